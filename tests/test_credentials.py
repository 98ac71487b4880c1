"""The credential chain, with ``tmp_path`` as HOME and explicit environment dicts."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from esa_scheduler.edge.credentials import Credentials, has_configured_credentials, resolve_credentials
from esa_scheduler.errors import ConfigError

SECRET = "s3cr3t-VALUE-never-shown"
TOKEN = "sts-TOKEN-never-shown"
ENV_AK = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "env-id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}


def write_cli(home: Path, data: object) -> Path:
    path = home / ".aliyun" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def write_ini(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def cli_profile(name: str, mode: str = "AK", **fields: str) -> dict[str, str]:
    return {"name": name, "mode": mode, "access_key_id": f"{name}-id", "access_key_secret": SECRET, **fields}


def fc_context(key_id: str | None = "fc-id", secret: str | None = SECRET, token: str | None = TOKEN) -> object:
    creds = SimpleNamespace(access_key_id=key_id, access_key_secret=secret, security_token=token)
    return SimpleNamespace(request_id="r-1", credentials=creds)


def test_explicit_wins_over_everything(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "default", "profiles": [cli_profile("default")]})
    explicit = Credentials("explicit-id", SECRET)
    found = resolve_credentials(explicit, fc_context(), ENV_AK, tmp_path)
    assert found is explicit
    assert found.source == "explicit"


def test_fc_context_credentials_carry_the_sts_token(tmp_path: Path) -> None:
    found = resolve_credentials(fc_context=fc_context(), environ=ENV_AK, home=tmp_path)
    assert (found.access_key_id, found.access_key_secret, found.security_token) == ("fc-id", SECRET, TOKEN)
    assert found.source == "fc-context"


@pytest.mark.parametrize(
    "context",
    [
        SimpleNamespace(request_id="r-1"),  # python3.12 runtimes have no context.credentials
        fc_context(key_id=""),
        fc_context(secret=None),
        SimpleNamespace(credentials=None),
    ],
)
def test_fc_context_without_credentials_falls_through_to_env(context: object, tmp_path: Path) -> None:
    assert resolve_credentials(fc_context=context, environ=ENV_AK, home=tmp_path).source == "env"


def test_fc_context_with_empty_token_means_no_token(tmp_path: Path) -> None:
    found = resolve_credentials(fc_context=fc_context(token=""), environ={}, home=tmp_path)
    assert found.security_token is None


def test_environment_with_and_without_token(tmp_path: Path) -> None:
    found = resolve_credentials(environ=ENV_AK, home=tmp_path)
    assert (found.access_key_id, found.security_token, found.source) == ("env-id", None, "env")
    with_token = resolve_credentials(environ={**ENV_AK, "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN}, home=tmp_path)
    assert with_token.security_token == TOKEN


def test_environment_beats_profile_files(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "default", "profiles": [cli_profile("default")]})
    write_ini(tmp_path / ".alibabacloud" / "credentials.ini", "[default]\ntype = access_key\n")
    assert resolve_credentials(environ=ENV_AK, home=tmp_path).source == "env"


def test_blank_environment_values_count_as_unset(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "default", "profiles": [cli_profile("default")]})
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "  ", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ""}
    assert resolve_credentials(environ=env, home=tmp_path).source == "aliyun-cli:default"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id"},
            "ALIBABA_CLOUD_ACCESS_KEY_ID is set but ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        ),
        ({"ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}, "ALIBABA_CLOUD_ACCESS_KEY_SECRET is set but"),
    ],
)
def test_half_a_key_pair_in_the_environment_is_an_error(env: dict[str, str], message: str, tmp_path: Path) -> None:
    # a profile exists, but silently using it could act on another account
    write_cli(tmp_path, {"current": "default", "profiles": [cli_profile("default")]})
    with pytest.raises(ConfigError, match=message) as info:
        resolve_credentials(environ=env, home=tmp_path)
    assert SECRET not in str(info.value)


def test_cli_profile_uses_current_by_default(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "work", "profiles": [cli_profile("default"), cli_profile("work")]})
    found = resolve_credentials(environ={}, home=tmp_path)
    assert (found.access_key_id, found.source) == ("work-id", "aliyun-cli:work")


def test_cli_profile_selected_by_environment(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "work", "profiles": [cli_profile("default"), cli_profile("work")]})
    found = resolve_credentials(environ={"ALIBABA_CLOUD_PROFILE": "default"}, home=tmp_path)
    assert found.source == "aliyun-cli:default"


def test_cli_sts_token_mode(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "sts", "profiles": [cli_profile("sts", "StsToken", sts_token=TOKEN)]})
    found = resolve_credentials(environ={}, home=tmp_path)
    assert (found.security_token, found.source) == (TOKEN, "aliyun-cli:sts")


def test_cli_sts_token_mode_without_token_is_skipped_with_a_reason(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "sts", "profiles": [cli_profile("sts", "StsToken")]})
    with pytest.raises(ConfigError, match=r"profile 'sts': sts_token empty"):
        resolve_credentials(environ={}, home=tmp_path)


def test_cli_ak_mode_ignores_a_stray_sts_token(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "ak", "profiles": [cli_profile("ak", sts_token=TOKEN)]})
    assert resolve_credentials(environ={}, home=tmp_path).security_token is None


def test_cli_unsupported_mode_is_skipped_and_ini_is_used(tmp_path: Path) -> None:
    write_cli(
        tmp_path, {"current": "role", "profiles": [cli_profile("role", "RamRoleArn", ram_role_arn="acs:ram::1:role/x")]}
    )
    write_ini(
        tmp_path / ".alibabacloud" / "credentials.ini",
        f"[default]\ntype = access_key\naccess_key_id = ini-id\naccess_key_secret = {SECRET}\n",
    )
    found = resolve_credentials(environ={}, home=tmp_path)
    assert (found.access_key_id, found.source) == ("ini-id", "credentials-ini:default")


def test_ini_inline_comments_are_stripped(tmp_path: Path) -> None:
    write_ini(
        tmp_path / ".alibabacloud" / "credentials.ini",
        "# my keys\n"
        "[default]\n"
        "type = access_key      # static keys\n"
        "access_key_id = ini-id # the id\n"
        f"access_key_secret = {SECRET}#no space before\n",
    )
    found = resolve_credentials(environ={}, home=tmp_path)
    assert (found.access_key_id, found.access_key_secret) == ("ini-id", SECRET)


def test_ini_section_and_file_from_environment(tmp_path: Path) -> None:
    path = write_ini(
        tmp_path / "elsewhere" / "creds.ini",
        f"[default]\ntype = access_key\naccess_key_id = d\naccess_key_secret = {SECRET}\n"
        f"[prod]\ntype = access_key\naccess_key_id = prod-id\naccess_key_secret = {SECRET}\n",
    )
    env = {"ALIBABA_CLOUD_CREDENTIALS_FILE": str(path), "ALIBABA_CLOUD_PROFILE": "prod"}
    found = resolve_credentials(environ=env, home=tmp_path)
    assert (found.access_key_id, found.source) == ("prod-id", "credentials-ini:prod")


def test_ini_unsupported_type_is_skipped_with_a_reason(tmp_path: Path) -> None:
    write_ini(tmp_path / ".alibabacloud" / "credentials.ini", "[default]\ntype = ecs_ram_role\nrole_name = r\n")
    with pytest.raises(ConfigError, match=r"\[default\]: type 'ecs_ram_role' not supported"):
        resolve_credentials(environ={}, home=tmp_path)


def test_cli_file_beats_ini_file(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "default", "profiles": [cli_profile("default")]})
    write_ini(
        tmp_path / ".alibabacloud" / "credentials.ini",
        f"[default]\ntype = access_key\naccess_key_id = ini-id\naccess_key_secret = {SECRET}\n",
    )
    assert resolve_credentials(environ={}, home=tmp_path).source == "aliyun-cli:default"


def test_nothing_found_lists_everything_tried_on_one_line(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "default", "profiles": [cli_profile("default")]})
    write_ini(tmp_path / ".alibabacloud" / "credentials.ini", "[default]\ntype = access_key\n")
    with pytest.raises(ConfigError) as info:
        resolve_credentials(fc_context=SimpleNamespace(), environ={"ALIBABA_CLOUD_PROFILE": "x"}, home=tmp_path)
    message = str(info.value)
    assert message == (
        "no Alibaba Cloud credentials found (tried: FC context: no credentials, "
        "environment ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET: not set, "
        "~/.aliyun/config.json profile 'x': not found, "
        "~/.alibabacloud/credentials.ini [x]: not found)"
    )
    assert info.value.exit_code == 2


def test_nothing_at_all(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_credentials(environ={}, home=tmp_path)
    assert str(info.value) == (
        "no Alibaba Cloud credentials found (tried: FC context: none given, "
        "environment ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET: not set, "
        "~/.aliyun/config.json: not found, ~/.alibabacloud/credentials.ini: not found)"
    )


def test_empty_cli_keys_are_reported_not_used(tmp_path: Path) -> None:
    # what a fresh `aliyun configure` leaves behind
    write_cli(tmp_path, {"current": "default", "profiles": [{"name": "default", "mode": "AK"}]})
    with pytest.raises(ConfigError, match=r"profile 'default': access_key_id, access_key_secret empty"):
        resolve_credentials(environ={}, home=tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"~/.aliyun/config.json is not valid JSON \(line 1, column 2\)"),
        (json.dumps(["a list"]), r"~/.aliyun/config.json is malformed at top level"),
        (json.dumps({"profiles": [{"mode": "AK"}]}), r"~/.aliyun/config.json is malformed at profiles.0.name"),
        (
            json.dumps({"profiles": [{"name": "default", "mode": "AK", "access_key_secret": 12345678}]}),
            r"malformed at profiles.0.access_key_secret: string_type",
        ),
    ],
)
def test_malformed_cli_file_names_the_file(content: str, message: str, tmp_path: Path) -> None:
    write_cli(tmp_path, content)
    with pytest.raises(ConfigError, match=message) as info:
        resolve_credentials(environ={}, home=tmp_path)
    assert "12345678" not in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        f"access_key_secret = {SECRET}\n",  # no section header
        f"[default]\ntype = access_key\n[default]\naccess_key_secret = {SECRET}\n",  # duplicate section
        f"[default]\n{SECRET}\n",  # not key = value
    ],
)
def test_malformed_ini_names_the_file_and_hides_values(content: str, tmp_path: Path) -> None:
    write_ini(tmp_path / ".alibabacloud" / "credentials.ini", content)
    with pytest.raises(ConfigError, match=r"~/.alibabacloud/credentials.ini is not a valid INI file") as info:
        resolve_credentials(environ={}, home=tmp_path)
    assert SECRET not in str(info.value)
    assert "\n" not in str(info.value)


def test_ini_outside_home_is_named_by_full_path(tmp_path: Path) -> None:
    path = write_ini(tmp_path / "other" / "c.ini", "garbage\n")
    with pytest.raises(ConfigError, match=str(path)):
        resolve_credentials(environ={"ALIBABA_CLOUD_CREDENTIALS_FILE": str(path)}, home=tmp_path / "home")


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    found = resolve_credentials(fc_context=fc_context(), environ={}, home=tmp_path)
    assert SECRET not in repr(found)
    assert TOKEN not in repr(found)
    assert SECRET not in str(found)
    assert "fc-id" in repr(found)


def test_has_configured_credentials(tmp_path: Path) -> None:
    assert not has_configured_credentials({}, tmp_path)
    assert not has_configured_credentials({"ALIBABA_CLOUD_ACCESS_KEY_ID": " "}, tmp_path)
    assert has_configured_credentials(ENV_AK, tmp_path)
    assert has_configured_credentials({"ALIBABA_CLOUD_ACCESS_KEY_ID": "half"}, tmp_path)
    ini = write_ini(tmp_path / "x.ini", "[default]\n")
    assert has_configured_credentials({"ALIBABA_CLOUD_CREDENTIALS_FILE": str(ini)}, tmp_path)
    write_cli(tmp_path, {"profiles": []})
    assert has_configured_credentials({}, tmp_path)


def test_has_configured_credentials_sees_the_default_ini(tmp_path: Path) -> None:
    write_ini(tmp_path / ".alibabacloud" / "credentials.ini", "[default]\n")
    assert has_configured_credentials({}, tmp_path)


def test_home_defaults_to_the_environment_home(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "default", "profiles": [cli_profile("default")]})
    assert resolve_credentials(environ={"HOME": str(tmp_path)}).source == "aliyun-cli:default"
    assert has_configured_credentials({"HOME": str(tmp_path)})
