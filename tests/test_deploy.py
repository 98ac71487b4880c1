"""The deployment artefacts agree with the code: template.yml, the README's configuration table, the zip.

Nothing here talks to Alibaba Cloud. The template is checked offline: it parses, every reference
resolves, every property name is one the ROS resource reference lists, and what it configures (handler,
runtime, timer, RAM policy, environment) matches what the package actually needs. The packaging test
builds the zip, unzips it, and runs the handler from the unzipped tree alone against the local emulator.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from croniter import croniter

from esa_scheduler import config
from esa_scheduler.client import ACTIONS
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, EmulatedTask, Emulator
from esa_scheduler.events import TimerEvent

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yml"
README = ROOT / "README.md"
SUPPORTED_RUNTIMES = {"python3.10", "python3.12"}

# Property names per resource type, as listed by the ROS resource reference (help.aliyun.com
# /ros/developer-reference/aliyun-<type>) and the ROS resource specification the ROS CDK is generated
# from. Only the names this template may use are listed; a typo anywhere below is caught.
ROS_PROPERTIES: dict[str, set[str]] = {
    "ALIYUN::RAM::Role": {
        "RoleName",
        "AssumeRolePolicyDocument",
        "Description",
        "MaxSessionDuration",
        "Policies",
        "PolicyAttachments",
        "DeletionForce",
    },
    "ALIYUN::RAM::ManagedPolicy": {"PolicyName", "Description", "PolicyDocument", "Roles", "Users", "Groups"},
    "ALIYUN::SLS::Project": {"Name", "Description"},
    "ALIYUN::SLS::Logstore": {
        "ProjectName",
        "LogstoreName",
        "TTL",
        "ShardCount",
        "AutoSplit",
        "MaxSplitShard",
        "PreserveStorage",
        "AppendMeta",
        "EnableTracking",
    },
    "ALIYUN::SLS::Index": {"ProjectName", "LogstoreName", "FullTextIndex", "KeyIndices", "LogReduce"},
    "ALIYUN::FC3::Function": {
        "FunctionName",
        "Handler",
        "Runtime",
        "Code",
        "Cpu",
        "Description",
        "DiskSize",
        "EnvironmentVariables",
        "InstanceConcurrency",
        "InstanceLifecycleConfig",
        "InternetAccess",
        "Layers",
        "LogConfig",
        "MemorySize",
        "NasConfig",
        "OssMountConfig",
        "Role",
        "Timeout",
        "TracingConfig",
        "VpcConfig",
    },
    "ALIYUN::FC3::Trigger": {
        "FunctionName",
        "TriggerName",
        "TriggerType",
        "TriggerConfig",
        "Description",
        "InvocationRole",
        "Qualifier",
        "SourceArn",
    },
    "ALIYUN::FC3::AsyncInvokeConfig": {
        "FunctionName",
        "AsyncTask",
        "DestinationConfig",
        "MaxAsyncEventAgeInSeconds",
        "MaxAsyncRetryAttempts",
    },
}
ROS_SUB_PROPERTIES: dict[str, set[str]] = {
    "Code": {"OssBucketName", "OssObjectName", "ZipFile", "SourceCode", "Checksum"},
    "LogConfig": {"Project", "Logstore", "EnableRequestMetrics", "EnableInstanceMetrics", "LogBeginRule"},
    "OssMountConfig": {"MountPoints"},
    "OssMountPoint": {"BucketName", "BucketPath", "Endpoint", "MountDir", "ReadOnly"},
    "DestinationConfig": {"OnSuccess", "OnFailure"},
    "Destination": {"Destination"},
    "TimerTriggerConfig": {"cronExpression", "enable", "payload"},
}
# Attributes Fn::GetAtt may read, per type (same sources as above).
ROS_ATTRIBUTES: dict[str, set[str]] = {
    "ALIYUN::RAM::Role": {"Arn", "RoleId", "RoleName"},
    "ALIYUN::RAM::ManagedPolicy": {"PolicyName"},
    "ALIYUN::SLS::Project": {"Name"},
    "ALIYUN::SLS::Logstore": {"LogstoreName"},
    "ALIYUN::SLS::Index": set(),
    "ALIYUN::FC3::Function": {"ARN", "FunctionId", "FunctionName"},
    "ALIYUN::FC3::Trigger": {"FunctionName", "TriggerId", "TriggerName", "UrlInternet", "UrlIntranet"},
    "ALIYUN::FC3::AsyncInvokeConfig": set(),
}
PSEUDO_PARAMETERS = {"ALIYUN::Region", "ALIYUN::AccountId", "ALIYUN::StackName", "ALIYUN::StackId", "ALIYUN::NoValue"}
# Variables the template need not set: the function role's STS credentials arrive in these on FC
# (and the profile/file ones are for the CLI), and FC sets FC_REGION itself (FC_* is reserved).
CREDENTIAL_VARIABLES = {
    config.ACCESS_KEY_ID,
    config.ACCESS_KEY_SECRET,
    config.SECURITY_TOKEN,
    config.PROFILE,
    config.CREDENTIALS_FILE,
}
PLATFORM_VARIABLES = {config.FC_REGION}


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == kind}


def _only(template: dict[str, Any], kind: str) -> dict[str, Any]:
    found = _resources(template, kind)
    assert len(found) == 1, f"expected exactly one {kind}, found {sorted(found)}"
    return next(iter(found.values()))["Properties"]  # type: ignore[no-any-return]


def _default(template: dict[str, Any], value: Any) -> Any:
    """A literal, or the default of the parameter a ``Ref`` names."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = template["Parameters"][value["Ref"]]
        assert "Default" in parameter, f"parameter {value['Ref']} has no default"
        return parameter["Default"]
    return value


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _policy_documents(template: dict[str, Any]) -> list[dict[str, Any]]:
    documents = [
        policy["PolicyDocument"]
        for role in _resources(template, "ALIYUN::RAM::Role").values()
        for policy in role["Properties"].get("Policies", [])
    ]
    documents += [
        body["Properties"]["PolicyDocument"] for body in _resources(template, "ALIYUN::RAM::ManagedPolicy").values()
    ]
    return documents


def _granted_actions(template: dict[str, Any]) -> list[str]:
    actions: list[str] = []
    for document in _policy_documents(template):
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            granted = statement["Action"]
            actions += [granted] if isinstance(granted, str) else list(granted)
    return actions


def _config_variables() -> dict[str, str]:
    """``{constant name: variable name}`` for every environment variable config.py names."""
    return {
        attr: value
        for attr, value in vars(config).items()
        if attr.isupper()
        and not attr.startswith("DEFAULT_")
        and isinstance(value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9_]+", value)
    }


def _readme_configuration_rows() -> dict[str, list[str]]:
    """``{variable: cells}`` for each row of the table under README's ``## Configuration``."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Configuration\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, "README.md has no '## Configuration' section"
    rows: dict[str, list[str]] = {}
    for line in match.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`([A-Z][A-Z0-9_]+)`", cells[0]) if line.lstrip().startswith("|") else None
        if name:
            rows[name.group(1)] = cells
    return rows


def _split_fc_cron(expression: str) -> tuple[str | None, list[str]]:
    """``(CRON_TZ zone or None, the six fields)`` of an FC timer expression."""
    zone = None
    text = expression.strip()
    if text.startswith("CRON_TZ="):
        prefix, _, text = text.partition(" ")
        zone = prefix.removeprefix("CRON_TZ=")
    return zone, text.split()


# ---------------------------------------------------------------------------------------------
# the template as a document


def test_template_parses_as_plain_yaml_with_long_form_functions(template: dict[str, Any]) -> None:
    # yaml.safe_load refuses unknown tags, so loading at all proves no !Ref-style short forms are used.
    assert template["ROSTemplateFormatVersion"] == "2015-09-01"
    assert set(template) <= {
        "ROSTemplateFormatVersion",
        "Description",
        "Parameters",
        "Conditions",
        "Resources",
        "Outputs",
        "Metadata",
    }


def test_every_reference_resolves(template: dict[str, Any]) -> None:
    parameters = set(template.get("Parameters", {}))
    resources = template["Resources"]
    conditions = set(template.get("Conditions", {}))
    for node in _walk(template):
        if not isinstance(node, dict):
            continue
        if "Ref" in node:
            assert node["Ref"] in parameters | set(resources) | PSEUDO_PARAMETERS, f"Ref to unknown {node['Ref']!r}"
        if "Fn::GetAtt" in node:
            target, attribute = node["Fn::GetAtt"]
            assert target in resources, f"Fn::GetAtt on unknown resource {target!r}"
            kind = resources[target]["Type"]
            assert attribute in ROS_ATTRIBUTES[kind], f"{kind} has no attribute {attribute!r}"
        if "Fn::If" in node:
            assert node["Fn::If"][0] in conditions, f"Fn::If on unknown condition {node['Fn::If'][0]!r}"
    for name, body in resources.items():
        if "Condition" in body:
            assert body["Condition"] in conditions, f"{name}: unknown condition {body['Condition']!r}"
        depends = body.get("DependsOn", [])
        for dependency in [depends] if isinstance(depends, str) else depends:
            assert dependency in resources, f"{name} depends on unknown {dependency!r}"


def test_parameter_names_are_letters_and_digits(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        assert re.fullmatch(r"[A-Za-z0-9]+", name), name
        assert parameter["Type"] in {"String", "Number", "Boolean", "Json", "CommaDelimitedList"}
        if "AllowedValues" in parameter and "Default" in parameter:
            assert parameter["Default"] in parameter["AllowedValues"], name


def test_property_names_are_ones_ros_documents(template: dict[str, Any]) -> None:
    for name, body in template["Resources"].items():
        kind = body["Type"]
        assert kind in ROS_PROPERTIES, f"{name}: resource type {kind} is not one this test knows"
        unknown = set(body["Properties"]) - ROS_PROPERTIES[kind]
        assert not unknown, f"{name} ({kind}): unknown properties {sorted(unknown)}"
    function = _only(template, "ALIYUN::FC3::Function")
    assert set(function["Code"]) <= ROS_SUB_PROPERTIES["Code"]
    assert set(function["LogConfig"]) <= ROS_SUB_PROPERTIES["LogConfig"]
    assert set(function["OssMountConfig"]) <= ROS_SUB_PROPERTIES["OssMountConfig"]
    for mount in function["OssMountConfig"]["MountPoints"]:
        assert set(mount) <= ROS_SUB_PROPERTIES["OssMountPoint"]
    trigger = _only(template, "ALIYUN::FC3::Trigger")
    assert set(trigger["TriggerConfig"]) <= ROS_SUB_PROPERTIES["TimerTriggerConfig"]


# ---------------------------------------------------------------------------------------------
# the function


def _handler_module(monkeypatch: pytest.MonkeyPatch, module_name: str) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))
    module = importlib.import_module(module_name)
    assert Path(module.__file__ or "").resolve().parent == ROOT, f"{module_name} did not load from the repository root"
    return module


def test_handler_resolves_to_a_callable_taking_event_and_context(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    function = _only(template, "ALIYUN::FC3::Function")
    module_name, _, attribute = function["Handler"].rpartition(".")
    assert module_name == "handler", "FC loads <file>.<function>; the package ships handler.py at its root"
    entry = getattr(_handler_module(monkeypatch, module_name), attribute)
    assert callable(entry)
    inspect.signature(entry).bind(b"{}", object())  # FC calls handler(event, context)


def test_runtime_is_a_supported_python_and_matches_the_packaged_wheels(template: dict[str, Any]) -> None:
    function = _only(template, "ALIYUN::FC3::Function")
    assert function["Runtime"] in SUPPORTED_RUNTIMES
    package = _package_script()
    assert function["Runtime"] == f"python{package.PYTHON_VERSION}", (
        "make package must build wheels for the template's runtime"
    )
    assert package.PLATFORM == "manylinux2014_x86_64"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pinned = re.search(r"^FC_PYTHON_VERSION\s*:?=\s*(\S+)", makefile, flags=re.M)
    assert pinned, "Makefile must pin FC_PYTHON_VERSION for make package"
    assert function["Runtime"] == f"python{pinned.group(1)}", "make package builds wheels for another Python"
    assert "--python-version $(FC_PYTHON_VERSION)" in makefile


def test_function_sizing_and_code_location(template: dict[str, Any]) -> None:
    function = _only(template, "ALIYUN::FC3::Function")
    assert function["MemorySize"] == 256
    assert function["Timeout"] == 300
    assert function["Code"]["OssBucketName"] == {"Ref": "CodeBucket"}
    assert str(_default(template, function["Code"]["OssObjectName"])).endswith("esa-scheduler.zip")
    assert "Default" not in template["Parameters"]["CodeBucket"], "the code bucket is the operator's to name"


def test_state_directory_is_the_read_write_oss_mount(template: dict[str, Any]) -> None:
    function = _only(template, "ALIYUN::FC3::Function")
    env = function["EnvironmentVariables"]
    (mount,) = function["OssMountConfig"]["MountPoints"]
    assert env[config.STATE_DIR] == mount["MountDir"]
    assert mount["ReadOnly"] is False
    assert str(_default(template, mount["MountDir"])).startswith("/mnt/")
    assert mount["BucketName"] == {"Ref": "StateBucket"}


def test_schedule_path_is_the_packaged_schedule_directory(template: dict[str, Any]) -> None:
    env = _only(template, "ALIYUN::FC3::Function")["EnvironmentVariables"]
    # FC unpacks the code zip at /code; the zip carries schedule/ at its root.
    assert env[config.SCHEDULE] == "/code/schedule"
    assert _package_script().SOURCES.count("schedule") == 1


def test_logs_go_to_the_project_and_logstore_the_template_creates(template: dict[str, Any]) -> None:
    log = _only(template, "ALIYUN::FC3::Function")["LogConfig"]
    resources = template["Resources"]
    project, _ = log["Project"]["Fn::GetAtt"]
    logstore, _ = log["Logstore"]["Fn::GetAtt"]
    assert resources[project]["Type"] == "ALIYUN::SLS::Project"
    assert resources[logstore]["Type"] == "ALIYUN::SLS::Logstore"
    index = _only(template, "ALIYUN::SLS::Index")
    (message,) = [key for key in index["KeyIndices"] if key["Name"] == "message"]
    indexed = {key["Name"] for key in message["JsonKeyIndices"]}
    assert {"event", "action", "task", "level", "run_id", "fc_request_id", "error_code"} <= indexed


# ---------------------------------------------------------------------------------------------
# the timer


def test_timer_trigger_is_enabled_with_a_valid_six_field_cron(template: dict[str, Any]) -> None:
    trigger = _only(template, "ALIYUN::FC3::Trigger")
    assert trigger["TriggerType"] == "timer"
    assert "InvocationRole" not in trigger, "a timer trigger needs no invocation role"
    settings = trigger["TriggerConfig"]
    assert settings["enable"] is True
    expression = _default(template, settings["cronExpression"])
    zone, fields = _split_fc_cron(expression)
    assert len(fields) == 6, f"FC cron has 6 fields, seconds first: {expression!r}"
    if zone is not None:
        ZoneInfo(zone)
    six = " ".join(fields)
    assert croniter.is_valid(six, second_at_beginning=True), expression
    start = datetime(2026, 12, 5, 1, 44, 30, tzinfo=timezone.utc)
    ticks = croniter(six, start, second_at_beginning=True)
    first, second = ticks.get_next(datetime), ticks.get_next(datetime)
    assert first.second == int(fields[0]), "the seconds field comes first"
    assert second - first <= timedelta(minutes=5), "the schedule's windows need at least a tick every few minutes"


@pytest.mark.parametrize(
    ("expression", "valid"),
    [
        ("0 * * * * *", True),
        ("0 */5 * * * *", True),
        ("CRON_TZ=Asia/Shanghai 0 0 4 * * *", True),
        ("0 0 4 ? * MON-FRI", True),
        ("* * * * *", False),  # five fields: the unix form FC does not take
        ("0 61 * * * *", False),
    ],
)
def test_fc_cron_check_itself(expression: str, valid: bool) -> None:
    _, fields = _split_fc_cron(expression)
    assert (len(fields) == 6 and croniter.is_valid(" ".join(fields), second_at_beginning=True)) is valid


def test_timer_payload_is_options_the_handler_accepts(template: dict[str, Any]) -> None:
    payload = _only(template, "ALIYUN::FC3::Trigger")["TriggerConfig"]["payload"]
    assert isinstance(payload, str)
    assert json.loads(payload) == {"dry_run": False}
    options = TimerEvent(triggerTime="2026-12-05T01:45:00Z", triggerName="t", payload=payload).options()
    assert options.dry_run is False


def test_async_invocation_has_bounded_retries_and_an_optional_failure_destination(template: dict[str, Any]) -> None:
    settings = _only(template, "ALIYUN::FC3::AsyncInvokeConfig")
    retries = template["Parameters"][settings["MaxAsyncRetryAttempts"]["Ref"]]
    assert 0 <= retries["MinValue"] <= retries["Default"] <= retries["MaxValue"] <= 8
    age = template["Parameters"][settings["MaxAsyncEventAgeInSeconds"]["Ref"]]
    assert 1 <= age["MinValue"] <= age["Default"] <= age["MaxValue"] <= 604800
    condition, when_set, when_unset = settings["DestinationConfig"]["Fn::If"]
    assert set(when_set) == {"OnFailure"}
    assert set(when_set["OnFailure"]) <= ROS_SUB_PROPERTIES["Destination"]
    assert when_unset == {"Ref": "ALIYUN::NoValue"}
    queue = next(
        node["Ref"]
        for node in _walk(when_set)
        if isinstance(node, dict) and "Ref" in node and not node["Ref"].startswith("ALIYUN::")
    )
    assert template["Parameters"][queue]["Default"] == "", "the failure destination is optional"
    # The permission to deliver there exists exactly when the destination does.
    (policy,) = _resources(template, "ALIYUN::RAM::ManagedPolicy").values()
    assert policy["Condition"] == condition


def test_outputs_name_the_function_and_its_arn(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    function = next(iter(_resources(template, "ALIYUN::FC3::Function")))
    assert outputs["FunctionName"]["Value"] == {"Fn::GetAtt": [function, "FunctionName"]}
    assert outputs["FunctionArn"]["Value"] == {"Fn::GetAtt": [function, "ARN"]}


# ---------------------------------------------------------------------------------------------
# least privilege


def test_role_is_assumable_by_function_compute_only(template: dict[str, Any]) -> None:
    role = _only(template, "ALIYUN::RAM::Role")
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"Service": ["fc.aliyuncs.com"]}
    function = _only(template, "ALIYUN::FC3::Function")
    role_name = next(iter(_resources(template, "ALIYUN::RAM::Role")))
    assert function["Role"] == {"Fn::GetAtt": [role_name, "Arn"]}


def test_policy_grants_exactly_the_esa_actions_the_client_can_send(template: dict[str, Any]) -> None:
    esa = sorted(action for action in _granted_actions(template) if action.lower().startswith("esa:"))
    assert esa == sorted(f"esa:{action}" for action in ACTIONS)


def test_policy_grants_no_wildcard_action(template: dict[str, Any]) -> None:
    for action in _granted_actions(template):
        assert "*" not in action, f"wildcard action {action!r}"
        assert re.fullmatch(r"[a-z]+:[A-Za-z]+", action), action


def test_only_esa_is_granted_on_every_resource(template: dict[str, Any]) -> None:
    for document in _policy_documents(template):
        for statement in document["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "*" in resources:
                # ESA's delivery-task actions take no resource ARN; everything else is scoped.
                assert all(action.startswith("esa:") for action in actions), actions


# ---------------------------------------------------------------------------------------------
# configuration: config.py <-> README <-> template


def test_config_names_the_variables_the_code_reads() -> None:
    names = set(_config_variables().values())
    assert {"ESA_SCHEDULE", "ESA_STATE_DIR", "ESA_REGION", "ESA_ENDPOINT", "ALIBABA_CLOUD_ACCESS_KEY_ID"} <= names
    pattern = re.compile(r"""["']((?:ESA|ALIBABA_CLOUD)_[A-Z0-9_]+)["']""")
    sources = [*sorted((ROOT / "esa_scheduler").rglob("*.py")), ROOT / "handler.py"]
    for path in sources:
        if path.name == "config.py":
            continue
        for literal in pattern.findall(path.read_text(encoding="utf-8")):
            assert literal in names, f"{path.relative_to(ROOT)} reads {literal}, which config.py does not name"


def test_readme_documents_every_variable_and_nothing_else() -> None:
    rows = _readme_configuration_rows()
    names = set(_config_variables().values())
    assert set(rows) == names, (
        f"missing from README: {sorted(names - set(rows))}; not in config.py: {sorted(set(rows) - names)}"
    )
    for name, cells in rows.items():
        assert len(cells) >= 3 and all(cells[:3]), f"README row for {name} needs name, default and meaning"


def test_every_variable_has_a_default_or_is_set_by_the_template(template: dict[str, Any]) -> None:
    env = _only(template, "ALIYUN::FC3::Function")["EnvironmentVariables"]
    for constant, name in _config_variables().items():
        if name in CREDENTIAL_VARIABLES | PLATFORM_VARIABLES:
            continue
        assert hasattr(config, f"DEFAULT_{constant}") or name in env, (
            f"{name} has no default in config.py and the template does not set it"
        )


def test_template_sets_only_variables_the_code_reads(template: dict[str, Any]) -> None:
    env = _only(template, "ALIYUN::FC3::Function")["EnvironmentVariables"]
    names = set(_config_variables().values())
    assert set(env) <= names, f"unknown variables in the template: {sorted(set(env) - names)}"
    assert not set(env) & CREDENTIAL_VARIABLES, "no keys in the template: the function role provides credentials"
    assert not any(name.startswith("FC_") for name in env), "FC_* variables are reserved by Function Compute"
    assert config.REGION in env or config.ENDPOINT in env
    for name in env:
        value = env[name]
        assert isinstance(value, str) or set(value) == {"Ref"}, f"{name} must be a string or a parameter"


def test_readme_defaults_match_config() -> None:
    rows = _readme_configuration_rows()
    for constant, name in _config_variables().items():
        default = getattr(config, f"DEFAULT_{constant}", None)
        if default is not None:
            assert str(default) in rows[name][1], f"README default for {name} should say {default}"


# ---------------------------------------------------------------------------------------------
# the package


def _package_script() -> ModuleType:
    path = ROOT / "scripts" / "package.py"
    spec = importlib.util.spec_from_file_location("esa_package_script", path)
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def _fake_dist(target: Path, name: str, *requires: str) -> None:
    info = target / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0", *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_dependencies_only_the_target_python_needs_are_found(tmp_path: Path) -> None:
    # pip resolves markers for the Python running it, not --python-version: the build must catch that.
    package = _package_script()
    _fake_dist(
        tmp_path, "anyio", 'exceptiongroup>=1.0.2; python_version < "3.11"', "idna>=2.8", 'trio; extra == "trio"'
    )
    _fake_dist(tmp_path, "idna")
    assert package.missing_requirements(tmp_path, package.target_markers("3.10")) == ["exceptiongroup>=1.0.2"]
    assert package.missing_requirements(tmp_path, package.target_markers("3.12")) == []
    assert package.target_markers()["python_version"] == package.PYTHON_VERSION


def test_requirement_names_skip_comments_and_options(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pinned\n-r base.txt\nhttpx==0.28.1  # client\n\nPyYAML>=6 ; python_version >= '3.10'\n")
    assert _package_script().requirement_names(requirements) == ["httpx", "PyYAML"]


RUN_FROM_ZIP = r"""
import json, sys, types
from pathlib import Path

root = Path.cwd().resolve()
import handler
import esa_scheduler, pydantic, yaml, httpx, croniter
for module in (handler, esa_scheduler, pydantic, yaml, httpx, croniter):
    assert Path(module.__file__).resolve().is_relative_to(root), (module.__name__, module.__file__)

context = types.SimpleNamespace(
    request_id="fc-req-1",
    region=None,
    function=types.SimpleNamespace(name="esa-scheduler", handler="handler.handler", memory=256, timeout=300),
)
event = b'{"triggerTime": "2026-12-05T01:45:00Z", "triggerName": "t", "payload": ""}'
result = handler.handler(event, context)
Path(sys.argv[1]).write_text(json.dumps(result))
"""


@pytest.mark.slow
def test_zip_runs_the_handler_from_its_unzipped_tree(tmp_path: Path) -> None:
    package = _package_script()
    zip_path = package.build(tmp_path / "esa-scheduler.zip", tmp_path / "build", deps_from_env=True)

    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        assert names == sorted(names), "entries are sorted (reproducible zip)"
        for name in names:
            parts = name.split("/")
            assert not {"tests", "bench", "__pycache__"} & set(parts), name
            assert not name.endswith(".pyc"), name
        required = {"handler.py", "esa_scheduler/__init__.py", "esa_scheduler/function.py", "schedule/sample.yaml"}
        assert required <= set(names)
        assert any(name.startswith("pydantic_core/") for name in names), "runtime dependencies are vendored"
        unzipped = tmp_path / "code"
        archive.extractall(unzipped)

    state = tmp_path / "state"
    result_file = tmp_path / "result.json"
    seed = [
        EmulatedTask(TaskName="access-logs-prod", Status="online"),
        EmulatedTask(TaskName="waf-eu", Status="online", BusinessType="dcdn_log_waf"),
        EmulatedTask(TaskName="site-logs", Status="offline", SiteId=1234567890),
    ]
    with Emulator(tasks=seed) as emulator:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),  # no ~/.aliyun profile can leak in
            "PYTHONPATH": str(unzipped),
            "PYTHONDONTWRITEBYTECODE": "1",
            config.ENDPOINT: emulator.url,
            config.ACCESS_KEY_ID: EMULATOR_ACCESS_KEY_ID,
            config.ACCESS_KEY_SECRET: EMULATOR_ACCESS_KEY_SECRET,
            config.SCHEDULE: str(unzipped / "schedule"),
            config.STATE_DIR: str(state),
        }
        # -S: no site-packages at all, so every import must come from the unzipped tree (or the stdlib).
        completed = subprocess.run(
            [sys.executable, "-S", "-c", RUN_FROM_ZIP, str(result_file)],
            cwd=unzipped,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        # The nightly/migration windows hold both account-level tasks offline at 01:45Z on 5 Dec 2026.
        assert emulator.status("access-logs-prod") == "offline"
        assert emulator.status("waf-eu") == "offline"
        assert emulator.status("site-logs", site_id=1234567890) == "offline"

    result = json.loads(result_file.read_text(encoding="utf-8"))
    assert result["ok"] is True
    assert result["counts"]["updated"] == 2
    assert result["counts"]["failed"] == 0

    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    assert lines, "the handler logs JSON lines on stdout (what FC ships to SLS)"
    events = [line["event"] for line in lines]
    assert events[-1] == "run.summary"
    results = [line for line in lines if line["event"] == "task.result"]
    assert {line["task"] for line in results} == {"access-logs-prod", "waf-eu", "site-logs"}
    assert all(line["fc_request_id"] == "fc-req-1" for line in lines)
    assert EMULATOR_ACCESS_KEY_SECRET not in completed.stdout + completed.stderr
