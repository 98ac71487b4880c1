"""Endpoint resolution per target (ESA), for STS and for FC: overrides, regions, networks, refusals.

The environment-only ESA table (today's behaviour) lives in ``test_client.py``.
"""

from __future__ import annotations

import re

import pytest

from esa_scheduler.edge.endpoints import resolve_endpoint, resolve_fc_endpoint, resolve_sts_endpoint
from esa_scheduler.errors import ConfigError

ACCOUNT = "1234567890123456"


@pytest.mark.parametrize(
    ("env", "region", "explicit", "expected"),
    [
        ({}, "ap-southeast-1", None, "https://esa.ap-southeast-1.aliyuncs.com"),
        ({"ESA_REGION": "cn-hangzhou"}, "ap-southeast-1", None, "https://esa.ap-southeast-1.aliyuncs.com"),
        ({"ESA_NETWORK": "vpc"}, "ap-southeast-1", None, "https://esa-vpc.ap-southeast-1.aliyuncs.com"),
        ({"ESA_ENDPOINT": "http://127.0.0.1:9000"}, "ap-southeast-1", None, "http://127.0.0.1:9000"),
        ({"ESA_ENDPOINT": "http://127.0.0.1:9000"}, "ap-southeast-1", "http://[::1]:9001", "http://[::1]:9001"),
        ({}, None, "https://esa.example.com/", "https://esa.example.com"),
        ({"ESA_REGION": "evil.com/x"}, None, "http://localhost:9002", "http://localhost:9002"),
        ({}, None, None, "https://esa.cn-hangzhou.aliyuncs.com"),
    ],
)
def test_esa_endpoint_per_target(env: dict[str, str], region: str | None, explicit: str | None, expected: str) -> None:
    assert resolve_endpoint(env, region=region, explicit=explicit) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "https://sts.aliyuncs.com"),
        ({"ESA_REGION": "ap-southeast-1"}, "https://sts.aliyuncs.com"),
        ({"ESA_NETWORK": "vpc"}, "https://sts-vpc.cn-hangzhou.aliyuncs.com"),
        ({"ESA_NETWORK": "vpc", "FC_REGION": "ap-southeast-1"}, "https://sts-vpc.ap-southeast-1.aliyuncs.com"),
        ({"ESA_STS_ENDPOINT": "http://127.0.0.1:8080", "ESA_NETWORK": "vpc"}, "http://127.0.0.1:8080"),
        ({"ESA_STS_ENDPOINT": " ", "ESA_ENDPOINT": "http://127.0.0.1:1"}, "https://sts.aliyuncs.com"),
    ],
)
def test_sts_endpoint(env: dict[str, str], expected: str) -> None:
    assert resolve_sts_endpoint(env) == expected


def test_sts_vpc_endpoint_follows_the_given_region() -> None:
    env = {"ESA_NETWORK": "vpc", "ESA_REGION": "cn-hangzhou"}
    assert resolve_sts_endpoint(env, region="ap-southeast-1") == "https://sts-vpc.ap-southeast-1.aliyuncs.com"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, f"https://{ACCOUNT}.cn-shanghai.fc.aliyuncs.com"),
        ({"ESA_REGION": "ap-southeast-1"}, f"https://{ACCOUNT}.cn-shanghai.fc.aliyuncs.com"),
        ({"ESA_NETWORK": "vpc"}, f"https://{ACCOUNT}.cn-shanghai-internal.fc.aliyuncs.com"),
        ({"ESA_FC_ENDPOINT": "http://127.0.0.1:8081/"}, "http://127.0.0.1:8081"),
    ],
)
def test_fc_endpoint(env: dict[str, str], expected: str) -> None:
    assert resolve_fc_endpoint(env, account_id=ACCOUNT, region="cn-shanghai") == expected


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: resolve_sts_endpoint({"ESA_STS_ENDPOINT": "http://sts.aliyuncs.com"}), "plain http on a non-loopback"),
        (lambda: resolve_sts_endpoint({"ESA_STS_ENDPOINT": "https://sts.aliyuncs.com/x"}), "no path or query"),
        (lambda: resolve_sts_endpoint({"ESA_NETWORK": "intranet"}), "ESA_NETWORK='intranet' must be"),
        (lambda: resolve_sts_endpoint({"ESA_NETWORK": "vpc"}, region="a.b"), "region='a.b' is not a region id"),
        (lambda: resolve_fc_endpoint({}, account_id="12ab", region="cn-hangzhou"), "account_id='12ab' is not"),
        (lambda: resolve_fc_endpoint({}, account_id=ACCOUNT, region="cn/x"), "region='cn/x' is not a region id"),
        (
            lambda: resolve_fc_endpoint({"ESA_FC_ENDPOINT": "ftp://x"}, account_id=ACCOUNT, region="cn-hangzhou"),
            "must start with https://",
        ),
        (lambda: resolve_endpoint({}, region="Cn_Hangzhou"), "region='Cn_Hangzhou' is not a region id"),
        (lambda: resolve_endpoint({}, explicit="http://192.0.2.1"), "plain http on a non-loopback"),
    ],
)
def test_refusals_name_the_value(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(ConfigError, match=re.escape(message)):
        call()
