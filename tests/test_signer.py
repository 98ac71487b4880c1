"""V3 signing against the published vectors, the official SDK's vectors and the SDK's own signer."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import httpx
import pytest
from helpers import sdk_authorization
from hypothesis import given, settings
from hypothesis import strategies as st

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.signer import (
    EMPTY_SHA256,
    AcsV3Auth,
    canonical_query,
    canonical_request,
    parse_query,
    percent_encode,
    signature,
    signed_header_names,
)

ESA_HOST = "esa.cn-hangzhou.aliyuncs.com"
ESA_DATE = datetime(2025, 1, 1, tzinfo=timezone.utc)
ESA_NONCE = "0123456789abcdef0123456789abcdef"
SDK_USER_AGENT = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"
TEST_CREDS = Credentials("testAccessKeyId", "testAccessKeySecret")


def esa_auth(creds: Credentials = TEST_CREDS) -> AcsV3Auth:
    return AcsV3Auth(creds, clock=lambda: ESA_DATE, nonce=lambda: ESA_NONCE)


def esa_request(action: str, params: dict[str, str]) -> httpx.Request:
    return httpx.Request(
        "GET",
        f"https://{ESA_HOST}/",
        params=params,
        headers={"x-acs-action": action, "x-acs-version": "2024-09-10", "Accept": "application/json"},
    )


def test_published_run_instances_vector() -> None:
    # GIVEN the worked example of the V3 documentation page
    request = httpx.Request(
        "POST",
        "https://ecs.cn-shanghai.aliyuncs.com/",
        params={"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"},
        headers={"x-acs-action": "RunInstances", "x-acs-version": "2014-05-26"},
    )
    auth = AcsV3Auth(
        Credentials("YourAccessKeyId", "YourAccessKeySecret"),
        clock=lambda: datetime(2023, 10, 26, 10, 22, 32, tzinfo=timezone.utc),
        nonce=lambda: "3156853299f313e23d1673dc12e1703d",
    )
    # WHEN it is signed
    auth.sign(request)
    # THEN the canonical request hashes and signs to the published values
    lowered = {k.lower(): v for k, v in request.headers.items()}
    names = signed_header_names(lowered)
    assert names == [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    ]
    canonical = canonical_request("POST", "/", request.url.query.decode(), lowered, names, EMPTY_SHA256)
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    )
    assert request.headers["Authorization"] == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;"
        "x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_esa_update_status_vector() -> None:
    request = esa_request("UpdateUserDeliveryTaskStatus", {"TaskName": "test_project", "Method": "online"})
    esa_auth().sign(request)
    assert str(request.url) == f"https://{ESA_HOST}/?Method=online&TaskName=test_project"
    assert request.headers["Authorization"].endswith(
        "Signature=0001d6690dd4ec5bbdeb48775ebbc6b337180046956ddd9d8d63a132672d96af"
    )
    # accept and user-agent stay unsigned: proxies may rewrite them
    assert "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;" in request.headers["Authorization"]


@pytest.mark.parametrize(
    ("method", "action", "params", "extra", "body", "hashed", "sig"),
    [
        pytest.param(
            "GET",
            "UpdateUserDeliveryTaskStatus",
            {"TaskName": "test_project", "Method": "online"},
            {"x-acs-credentials-provider": "static_ak"},
            b"",
            "c4737e5c24269c877cd8ab138c50f13c5d053127e9c0a1ae23f53508edf1f627",
            "835e805946057034d2eef9040269dd87de64d9d933e99d901027becbe0ff26f5",
            id="full-header-set",
        ),
        pytest.param(
            "GET",
            "UpdateUserDeliveryTaskStatus",
            {"TaskName": "a b*c~d/e+f=g&h 任务", "Method": "offline"},
            {"x-acs-credentials-provider": "static_ak"},
            b"",
            "dcdf8f3f97ceeb824171d0f77ffd92cea2773277516bb282c4805c651c89d565",
            "eec8a4fc62ef72346b72e260042b2ad208f4d0ce640fb428279d2c04e8ff5285",
            id="escaping",
        ),
        pytest.param(
            "GET",
            "ListUserDeliveryTasks",
            {"BusinessType": "dcdn_log_access_l1", "PageNumber": "1", "PageSize": "20"},
            {
                "x-acs-credentials-provider": "static_sts",
                "x-acs-accesskey-id": "testAccessKeyId",
                "x-acs-security-token": "testSecurityToken",
            },
            b"",
            "44c9a7fc66d617637285f6fe1b0332a87608278ba64a7f5bd1e3c6079b4baa25",
            "e07d34a4d96eb8a0eccc416e134e8718fed910ba7d0f4bfa81f58eb0a90fa969",
            id="sts",
        ),
        pytest.param(
            "POST",
            "DeleteUserDeliveryTask",
            {},
            {"x-acs-credentials-provider": "static_ak", "content-type": "application/x-www-form-urlencoded"},
            b"TaskName=test+project%2A",
            "425081b361372f576464229954173dc2256b2d86828e6f625ad601f56426e635",
            "0c41ffcdfda4f288a49fcd11f05bf73967f9db8b1b8500feec6eb8ac164c44c0",
            id="form-body",
        ),
    ],
)
def test_vectors_produced_by_the_official_sdk(
    method: str, action: str, params: dict[str, str], extra: dict[str, str], body: bytes, hashed: str, sig: str
) -> None:
    # GIVEN the SDK's full header set (it signs every header, not only host and x-acs-*)
    headers = {
        "host": ESA_HOST,
        "x-acs-version": "2024-09-10",
        "x-acs-action": action,
        "user-agent": SDK_USER_AGENT,
        "x-acs-date": "2025-01-01T00:00:00Z",
        "x-acs-signature-nonce": ESA_NONCE,
        "accept": "application/json",
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        **extra,
    }
    names = sorted(headers)
    canonical = canonical_request(
        method, "/", canonical_query(params.items()), headers, names, headers["x-acs-content-sha256"]
    )
    assert hashlib.sha256(canonical.encode()).hexdigest() == hashed
    assert signature("testAccessKeySecret", canonical) == sig


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (" ", "%20"),
        ("*", "%2A"),
        ("~", "~"),
        ("/", "%2F"),
        ("+", "%2B"),
        ("=", "%3D"),
        ("&", "%26"),
        ("%", "%25"),
        ("-_.", "-_."),
        ("é", "%C3%A9"),
        ("任务", "%E4%BB%BB%E5%8A%A1"),
        ("😀", "%F0%9F%98%80"),
    ],
)
def test_percent_encoding_is_rfc3986(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


def test_escaping_canonical_query_is_exactly_what_goes_on_the_wire() -> None:
    params = {"TaskName": "a b*c~d/e+f=g&h 任务", "Method": "offline"}
    request = esa_request("UpdateUserDeliveryTaskStatus", params)
    esa_auth().sign(request)
    expected = "Method=offline&TaskName=a%20b%2Ac~d%2Fe%2Bf%3Dg%26h%20%E4%BB%BB%E5%8A%A1"
    assert canonical_query(params.items()) == expected
    assert request.url.query.decode() == expected
    assert dict(parse_query(request.url.query.decode())) == params


def test_parse_query_accepts_plus_for_space_and_empty_values() -> None:
    assert parse_query("a=x+y&b=&&c=%2B") == [("a", "x y"), ("b", ""), ("c", "+")]


def test_sts_token_is_sent_and_signed() -> None:
    creds = Credentials("testAccessKeyId", "testAccessKeySecret", "testSecurityToken")
    params = {"BusinessType": "dcdn_log_access_l1", "PageNumber": "1", "PageSize": "20"}
    request = esa_request("ListUserDeliveryTasks", params)
    esa_auth(creds).sign(request)
    assert request.headers["x-acs-security-token"] == "testSecurityToken"
    assert "x-acs-security-token" in request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert request.headers["Authorization"] == sdk_authorization(
        request, creds.access_key_id, creds.access_key_secret, params.items()
    )
    # and without the token the header is absent and the signature differs
    plain = esa_request("ListUserDeliveryTasks", params)
    esa_auth().sign(plain)
    assert "x-acs-security-token" not in plain.headers
    assert plain.headers["Authorization"] != request.headers["Authorization"]


def test_body_hash_and_content_type_are_signed_for_a_form_body() -> None:
    request = httpx.Request(
        "POST",
        f"https://{ESA_HOST}/",
        content=b"TaskName=test+project%2A",
        headers={
            "x-acs-action": "DeleteUserDeliveryTask",
            "x-acs-version": "2024-09-10",
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    esa_auth().sign(request)
    assert request.headers["x-acs-content-sha256"] == (
        "e9be4f79568a62d9bbcb5b3b14d018b5b898f6e91f28fa50e966a87db8c8d116"
    )
    assert "content-type;host" in request.headers["Authorization"]
    assert request.headers["Authorization"] == sdk_authorization(
        request, TEST_CREDS.access_key_id, TEST_CREDS.access_key_secret
    )


def test_header_values_are_trimmed_in_the_canonical_headers() -> None:
    # GIVEN a signed header with whitespace around its value (a server's HTTP parser drops it)
    padded = esa_request("GetUserDeliveryTask", {"TaskName": "t"})
    padded.headers["x-acs-version"] = " \t2024-09-10  "
    # WHEN it is signed
    esa_auth().sign(padded)
    # THEN the SDK, given the value as sent, signs the same, and so does the trimmed value
    assert padded.headers["Authorization"] == sdk_authorization(
        padded, TEST_CREDS.access_key_id, TEST_CREDS.access_key_secret
    )
    trimmed = esa_request("GetUserDeliveryTask", {"TaskName": "t"})
    esa_auth().sign(trimmed)
    assert padded.headers["Authorization"] == trimmed.headers["Authorization"]


def test_each_signing_takes_a_fresh_nonce_and_the_current_date() -> None:
    nonces = iter(["n1", "n2"])
    dates = iter([ESA_DATE, datetime(2025, 1, 1, 0, 0, 5, tzinfo=timezone.utc)])
    auth = AcsV3Auth(TEST_CREDS, clock=lambda: next(dates), nonce=lambda: next(nonces))
    first, second = (
        esa_request("GetUserDeliveryTask", {"TaskName": "t"}),
        esa_request("GetUserDeliveryTask", {"TaskName": "t"}),
    )
    auth.sign(first)
    auth.sign(second)
    assert (first.headers["x-acs-signature-nonce"], second.headers["x-acs-signature-nonce"]) == ("n1", "n2")
    assert second.headers["x-acs-date"] == "2025-01-01T00:00:05Z"
    assert first.headers["Authorization"] != second.headers["Authorization"]


def test_secret_is_not_in_repr() -> None:
    creds = Credentials("id", "very-secret", "very-token")
    assert "very-secret" not in repr(creds)
    assert "very-token" not in repr(creds)


@settings(max_examples=200, deadline=None)
@given(
    task=st.text(min_size=0, max_size=40),
    business=st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    token=st.one_of(st.none(), st.text(alphabet="abcdefABCDEF0123456789+/=", min_size=1, max_size=30)),
)
def test_signature_matches_the_official_sdk_signer(task: str, business: str, token: str | None) -> None:
    # GIVEN arbitrary unicode query values (the SDK's canonicaliser is the oracle)
    creds = Credentials("testAccessKeyId", "testAccessKeySecret", token)
    params = {"TaskName": task, "BusinessType": business, "Method": "online"}
    request = esa_request("UpdateUserDeliveryTaskStatus", params)
    # WHEN we sign it
    esa_auth(creds).sign(request)
    # THEN the SDK computes the same Authorization, and the wire carries the signed query
    assert request.headers["Authorization"] == sdk_authorization(
        request, creds.access_key_id, creds.access_key_secret, params.items()
    )
    assert request.url.query.decode() == canonical_query(params.items())
    assert sorted(parse_query(request.url.query.decode())) == sorted(params.items())
