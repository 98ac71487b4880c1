"""The deployment artefacts agree with the code: template.yml, the configuration table of docs/operations.md, the zip.

Nothing here talks to Alibaba Cloud. The templates are checked offline against the ROS resource
specification that the pinned ``ros-cdk-*`` wheels carry (``ros_spec``): every resource type, property
name and casing, required property, type, range, length, pattern and allowed value, every ``Ref`` and
``Fn::GetAtt`` target and attribute, for any parameter values the template itself accepts. Then what
template.yml configures (handler, runtime, timer, serialized invocations, RAM names and policy,
environment) is checked against what the package actually needs. The packaging test builds the zip,
unzips it, and runs the handler from the unzipped tree alone against the local emulator.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import json
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
from helpers import child_environment
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from ros_spec import (
    PSEUDO_PARAMETERS,
    Evaluation,
    Scenario,
    SpecFormatError,
    Unresolved,
    generated_source,
    parse_service,
    problems,
    references,
    resource_type,
)

from esa_scheduler import config
from esa_scheduler.edge.client import ACTIONS
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, EmulatedTask, Emulator
from esa_scheduler.invocation.events.models import TimerEvent

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yml"
# template.yml and any template added under templates/ get the same specification checks.
TEMPLATES = [TEMPLATE, *sorted((ROOT / "templates").glob("*.yml"))]
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
SUPPORTED_RUNTIMES = {"python3.10", "python3.12"}

# FC's TimerTriggerConfig keys (FC 3.0 API). The ROS specification leaves TriggerConfig a free map.
TIMER_TRIGGER_CONFIG_KEYS = {"cronExpression", "enable", "payload"}
# RAM's own naming rules (CreateRole, CreatePolicy), which the ROS specification does not carry. RAM
# names are account-wide, and so are SLS project names.
RAM_ROLE_NAME = re.compile(r"[A-Za-z0-9.-]{1,64}")
RAM_POLICY_NAME = re.compile(r"[A-Za-z0-9-]{1,128}")
# Region ids a stack may run in; the last is the longest public one, which bounds derived names.
REGIONS = ("cn-hangzhou", "ap-southeast-1", "cn-shanghai-finance-1")
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


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path.name} is not a YAML mapping"
    return loaded


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _load(TEMPLATE)


@functools.cache
def _simplest_value(parameter_json: str) -> Any:
    """The simplest value a parameter without a default accepts (hypothesis shrinks to it)."""
    return find(_parameter_values(json.loads(parameter_json)), lambda _: True)


ROLE_ARNS = ("acs:ram::1234567890123456:role/esa-scheduler-target", "acs:ram::6543210987654321:role/esa-target")
"""Target roles in two member accounts, for TargetRoleArns."""


def _scenario(template: dict[str, Any], region: str = REGIONS[0], **overrides: Any) -> Scenario:
    """The stack ROS would create with every default, and the simplest value where there is none."""
    values = {
        name: parameter["Default"] if "Default" in parameter else _simplest_value(json.dumps(parameter, sort_keys=True))
        for name, parameter in template.get("Parameters", {}).items()
    }
    unknown = set(overrides) - set(values)
    assert not unknown, f"no such parameters: {sorted(unknown)}"
    return Scenario(parameters={**values, **overrides}, region=region)


def _longest(parameter: dict[str, Any], filler: str) -> str:
    """``filler`` repeated to the parameter's MaxLength, checked against its own AllowedPattern."""
    value = filler * int(parameter["MaxLength"])
    assert re.fullmatch(parameter["AllowedPattern"], value), f"{value!r} is not a value the parameter accepts"
    return value


def _with_failure_queue(template: dict[str, Any], region: str = REGIONS[0]) -> Evaluation:
    """template.yml with every default and a failure queue: the stack with the most permissions."""
    return Evaluation(template, _scenario(template, region, FailureDestinationQueue="esa-scheduler-failures"))


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


def _policies(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """``{policy name: policy document}`` of every RAM policy the evaluated stack creates."""
    template, resources = evaluation.template, evaluation.resources()
    found: dict[str, dict[str, Any]] = {}
    for name, properties in resources.items():
        kind = template["Resources"][name]["Type"]
        if kind == "ALIYUN::RAM::Role":
            found.update({policy["PolicyName"]: policy["PolicyDocument"] for policy in properties.get("Policies", [])})
        elif kind == "ALIYUN::RAM::ManagedPolicy":
            found[properties["PolicyName"]] = properties["PolicyDocument"]
    return found


def _granted(evaluation: Evaluation) -> list[tuple[str, list[Any]]]:
    """``(action, resources)`` for every action of every Allow statement of every policy."""
    granted: list[tuple[str, list[Any]]] = []
    for document in _policies(evaluation).values():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            actions, targets = statement["Action"], statement["Resource"]
            targets = targets if isinstance(targets, list) else [targets]
            granted += [(action, targets) for action in ([actions] if isinstance(actions, str) else actions)]
    return granted


def _account_wide_names(evaluation: Evaluation) -> dict[str, str]:
    """``{what: name}`` of everything the stack names whose name must be unique in the account."""
    template, resources = evaluation.template, evaluation.resources()
    names: dict[str, str] = {}
    for name, properties in resources.items():
        kind = template["Resources"][name]["Type"]
        if kind == "ALIYUN::RAM::Role":
            names[f"{name} role"] = properties["RoleName"]
        if kind == "ALIYUN::SLS::Project":
            names[f"{name} SLS project"] = properties["Name"]
    names.update({f"policy {policy}": policy for policy in _policies(evaluation)})
    return names


def _depends_on(template: dict[str, Any], name: str) -> set[str]:
    """Every resource ``name`` waits for: its DependsOn, its Refs and Fn::GetAtts, transitively."""
    resources = template["Resources"]
    pending, seen = [name], set[str]()
    while pending:
        body = resources[pending.pop()]
        depends = body.get("DependsOn", [])
        direct = {depends} if isinstance(depends, str) else set(depends)
        for function, argument in references(body.get("Properties", {})):
            if function == "Ref" and argument in resources:
                direct.add(argument)
            elif function == "Fn::GetAtt":
                direct.add(argument[0])
        pending += sorted(direct - seen)
        seen |= direct
    return seen


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
    """``{variable: cells}`` for each row of the table under docs/operations.md's ``## Configuration``."""
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    match = re.search(r"^## Configuration\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, "docs/operations.md has no '## Configuration' section"
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
# every template, against the ROS resource specification


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_template_parses_as_plain_yaml_with_long_form_functions(path: Path) -> None:
    # yaml.safe_load refuses unknown tags, so loading at all proves no !Ref-style short forms are used.
    template = _load(path)
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


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_every_reference_resolves(path: Path) -> None:
    template = _load(path)
    parameters = set(template.get("Parameters", {}))
    resources = template["Resources"]
    conditions = set(template.get("Conditions", {}))
    for function, argument in references(template):
        if function == "Ref":
            assert argument in parameters | set(resources) | PSEUDO_PARAMETERS, f"Ref to unknown {argument!r}"
        if function == "Fn::GetAtt":
            target, attribute = argument
            assert target in resources, f"Fn::GetAtt on unknown resource {target!r}"
            kind = resources[target]["Type"]
            attributes = resource_type(kind).attributes
            assert attribute in attributes, f"{kind} has no attribute {attribute!r}; it has {sorted(attributes)}"
        if function == "Fn::If":
            assert argument[0] in conditions, f"Fn::If on unknown condition {argument[0]!r}"
    for name, body in resources.items():
        if "Condition" in body:
            assert body["Condition"] in conditions, f"{name}: unknown condition {body['Condition']!r}"
        depends = body.get("DependsOn", [])
        for dependency in [depends] if isinstance(depends, str) else depends:
            assert dependency in resources, f"{name} depends on unknown {dependency!r}"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_parameters_are_well_formed_and_their_defaults_acceptable(path: Path) -> None:
    # ROS refuses a stack whose parameter value breaks the parameter's own constraints, defaults included.
    for name, parameter in _load(path).get("Parameters", {}).items():
        assert re.fullmatch(r"[A-Za-z0-9]+", name), name
        assert parameter["Type"] in {"String", "Number", "Boolean", "Json", "CommaDelimitedList"}
        assert parameter.get("Description"), f"{name} needs a description"
        if "Default" not in parameter:
            continue
        default = parameter["Default"]
        if "AllowedValues" in parameter:
            assert default in parameter["AllowedValues"], name
        if "AllowedPattern" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], default), f"{name} default {default!r}"
        if isinstance(default, str):
            assert parameter.get("MinLength", 0) <= len(default) <= parameter.get("MaxLength", len(default)), name
        if parameter["Type"] == "Number":
            assert parameter.get("MinValue", default) <= default <= parameter.get("MaxValue", default), name


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_every_resource_type_is_in_the_pinned_specification(path: Path) -> None:
    requirements = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    for body in _load(path)["Resources"].values():
        spec = resource_type(body["Type"])
        assert re.search(rf"^{re.escape(spec.package)}\b", requirements, flags=re.M), (
            f"{body['Type']} comes from {spec.package}: pin exactly that in requirements-dev.txt"
        )


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_resources_match_the_specification_with_the_defaults(path: Path) -> None:
    template = _load(path)
    for region in REGIONS:
        evaluation = Evaluation(template, _scenario(template, region))
        for name, properties in evaluation.resources().items():
            assert problems(template["Resources"][name]["Type"], properties, name) == []


def _parameter_values(parameter: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Every value ROS accepts for ``parameter``: its allowed values, range, pattern and lengths."""
    if "AllowedValues" in parameter:
        return st.sampled_from(parameter["AllowedValues"])
    if parameter["Type"] == "Number":
        return st.integers(min_value=parameter.get("MinValue"), max_value=parameter.get("MaxValue"))
    if parameter["Type"] == "CommaDelimitedList":
        return st.lists(st.sampled_from(ROLE_ARNS), max_size=3, unique=True).map(",".join)
    assert parameter["Type"] == "String", f"teach _parameter_values the {parameter['Type']} type"
    low, high = parameter.get("MinLength", 0), parameter.get("MaxLength")
    if "AllowedPattern" not in parameter:
        return st.text(min_size=low, max_size=high)
    return st.from_regex(parameter["AllowedPattern"], fullmatch=True).filter(
        lambda value: low <= len(value) and (high is None or len(value) <= high)
    )


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_resources_match_the_specification_for_any_accepted_parameters(path: Path, data: st.DataObject) -> None:
    # Whatever an operator passes, within the template's own parameter constraints, ROS must accept
    # every resource: a parameter looser than the property it feeds fails here, with the value.
    template = _load(path)
    values = {
        name: data.draw(_parameter_values(parameter), label=name)
        for name, parameter in template.get("Parameters", {}).items()
    }
    scenario = Scenario(
        parameters=values,
        region=data.draw(st.sampled_from(REGIONS), label="region"),
        account_id=data.draw(st.from_regex(r"[1-9][0-9]{15}", fullmatch=True), label="account"),
    )
    evaluation = Evaluation(template, scenario)
    for name, properties in evaluation.resources().items():
        assert problems(template["Resources"][name]["Type"], properties, name) == []


@pytest.mark.parametrize(
    ("resource", "change", "complaint"),
    [
        ("Function", {"MemorySize": 64}, "Function.MemorySize: 64 is below the minimum 128"),
        ("Function", {"Timeout": "300"}, "Function.Timeout: must be a number, not '300'"),
        ("Function", {"Memorysize": 256}, "has no property 'Memorysize' (did you mean 'MemorySize'?)"),
        ("Function", {"Handler": None}, "Function: ALIYUN::FC3::Function requires 'Handler'"),
        ("Logstore", {"TTL": 3651}, "Logstore.TTL: 3651 is above the maximum 3650"),
        ("Logstore", {"LogstoreName": "no spaces"}, "does not match /^[a-zA-Z0-9_-]+$/"),
        ("LogProject", {"Name": "ab"}, "LogProject.Name: length 2 of 'ab' is below 3"),
        ("ConcurrencyConfig", {"ReservedConcurrency": 301}, "is above the maximum 300"),
        ("AsyncInvokeConfig", {"MaxAsyncRetryAttempts": 9}, "is above the maximum 8"),
        ("LogIndex", {"FullTextIndex": {"Enable": "yes"}}, "LogIndex.FullTextIndex.Enable: must be a boolean"),
        ("TimerTrigger", {"TriggerConfig": None}, "requires 'TriggerConfig'"),
    ],
)
def test_the_specification_check_catches_what_ros_would_refuse(
    template: dict[str, Any], resource: str, change: dict[str, Any], complaint: str
) -> None:
    # The same check as above on one deliberately broken property: the spec was read, not skipped.
    properties = Evaluation(template, _scenario(template)).resources()[resource]
    broken = {key: value for key, value in {**properties, **change}.items() if value is not None}
    found = problems(template["Resources"][resource]["Type"], broken, resource)
    assert any(complaint in problem for problem in found), found


def test_an_allowed_value_list_from_the_specification_is_enforced(template: dict[str, Any]) -> None:
    properties = Evaluation(template, _scenario(template)).resources()["LogIndex"]
    message = properties["KeyIndices"][0]
    broken = {**properties, "KeyIndices": [{**message, "Type": "jsonb"}]}
    (found,) = problems("ALIYUN::SLS::Index", broken, "LogIndex")
    assert found == "LogIndex.KeyIndices[0].Type: 'jsonb' is not one of ['text', 'long', 'double', 'json']"


@pytest.mark.parametrize(
    ("original", "replacement", "complaint"),
    [
        ("ros.validateBoolean)(properties.asyncTask)", "ros.validateDate)(properties.asyncTask)", "unknown validator"),
        ("'AsyncTask': ros.booleanToRosTemplate(", "'AsyncTask': ros.dateToRosTemplate(", "unknown mapper"),
        (
            "errors.collect(ros.propertyValidator('asyncTask'",
            "errors.check(ros.propertyValidator('asyncTask'",
            "cannot read",
        ),
        ("'AsyncTask': ros.booleanToRosTemplate(", "'AsyncTask': ros.stringToRosTemplate(", "validates as"),
    ],
)
def test_the_specification_reader_refuses_what_it_cannot_read(original: str, replacement: str, complaint: str) -> None:
    # A construct a later ros-cdk release adds must stop the suite, not be skipped silently.
    text, package = generated_source("ros-cdk-fc3")
    assert text.count(original) == 1
    with pytest.raises(SpecFormatError, match=complaint):
        parse_service(text.replace(original, replacement), package)


def test_parameters_reach_the_limits_the_specification_allows(template: dict[str, Any]) -> None:
    # Not narrower than needed where the issue asks for the full range: logs may be kept 3650 days.
    ttl = resource_type("ALIYUN::SLS::Logstore").properties.rules["TTL"]
    assert template["Resources"]["Logstore"]["Properties"]["TTL"] == {"Ref": "LogRetentionDays"}
    assert template["Parameters"]["LogRetentionDays"]["MaxValue"] == ttl.maximum == 3650


# ---------------------------------------------------------------------------------------------
# names that must be unique in the account


def test_stacks_in_two_regions_with_the_defaults_do_not_collide(template: dict[str, Any]) -> None:
    first, second = (
        set(_account_wide_names(Evaluation(template, _scenario(template, region))).values()) for region in REGIONS[:2]
    )
    assert not first & second, f"a second stack in {REGIONS[1]} would collide on {sorted(first & second)}"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
@pytest.mark.parametrize("region", REGIONS)
def test_account_wide_names_follow_ram_and_sls_rules(path: Path, region: str) -> None:
    template = _load(path)
    overrides: dict[str, Any] = {}
    for name in ("FunctionName", "FailureDestinationQueue"):  # the longest names, and every policy
        if name in template.get("Parameters", {}):
            overrides[name] = _longest(template["Parameters"][name], "a")
    evaluation = Evaluation(template, _scenario(template, region, **overrides))
    for what, name in _account_wide_names(evaluation).items():
        assert isinstance(name, str), f"{what} must be known before deployment, not {name}"
        if what.endswith(" role"):
            assert RAM_ROLE_NAME.fullmatch(name), f"{what} {name!r} ({len(name)} characters) breaks RAM's rules"
        elif what.startswith("policy "):
            assert RAM_POLICY_NAME.fullmatch(name), f"{what} ({len(name)} characters) breaks RAM's rules"
        else:
            assert name == name.lower(), f"{what} {name!r}: SLS project names are lowercase"
    for name, properties in evaluation.resources().items():
        assert problems(template["Resources"][name]["Type"], properties, name) == []


def test_role_and_policy_names_derive_from_function_name_and_region(template: dict[str, Any]) -> None:
    names = _account_wide_names(_with_failure_queue(template, "ap-southeast-1"))
    assert names["FunctionRole role"] == "esa-scheduler-ap-southeast-1-role"
    assert set(_policies(_with_failure_queue(template, "ap-southeast-1"))) == {
        "esa-scheduler-ap-southeast-1-policy",
        "esa-scheduler-ap-southeast-1-failure-destination",
    }


def test_function_name_allows_no_underscore(template: dict[str, Any]) -> None:
    pattern = template["Parameters"]["FunctionName"]["AllowedPattern"]
    assert re.fullmatch(pattern, "esa-scheduler-2")
    for rejected in ("esa_scheduler", "_esa", "esa.scheduler", "-esa", "a" * 33):
        assert not re.fullmatch(pattern, rejected), rejected


@pytest.mark.parametrize(
    ("parameter", "accepted", "rejected"),
    [
        (
            "LogProjectName",
            ["", "abc", "esa-logs-1", "a" * 63],
            ["ab", "Esa-logs", "esa_logs", "-esa", "esa-", "a" * 64],
        ),
        ("LogstoreName", ["abc", "esa_scheduler", "esa-1", "a" * 63], ["ab", "", "Esa", "esa.", "_esa", "a" * 64]),
        (
            "StateMountDir",
            ["/mnt/state", "/home/esa/state-1"],
            ["", "/", "mnt/state", "/mnt/../etc", "/mnt/.x", "/mnt//x"],
        ),
        ("FailureDestinationQueue", ["", "esa-failures", "q" * 120], ["1queue", "esa_failures", "q" * 121]),
    ],
)
def test_name_parameters_accept_what_the_service_accepts(
    parameter: str, accepted: list[str], rejected: list[str]
) -> None:
    spec = _load(TEMPLATE)["Parameters"][parameter]

    def admitted(value: str) -> bool:
        within = spec.get("MinLength", 0) <= len(value) <= spec.get("MaxLength", len(value))
        return within and re.fullmatch(spec["AllowedPattern"], value) is not None

    assert [value for value in accepted if not admitted(value)] == []
    assert [value for value in rejected if admitted(value)] == []


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
    # a fleet's lines are filtered by target (``target``; a notify line's is the notify entry) and by
    # the FC async task a dispatch made
    assert {"target", "task_id"} <= indexed


# ---------------------------------------------------------------------------------------------
# the timer


def test_timer_trigger_is_enabled_with_a_valid_six_field_cron(template: dict[str, Any]) -> None:
    trigger = _only(template, "ALIYUN::FC3::Trigger")
    assert trigger["TriggerType"] == "timer"
    assert "InvocationRole" not in trigger, "a timer trigger needs no invocation role"
    settings = trigger["TriggerConfig"]
    assert set(settings) <= TIMER_TRIGGER_CONFIG_KEYS, "FC's TimerTriggerConfig keys are camelCase"
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
    assert template["Parameters"]["FailureDestinationQueue"]["Default"] == "", "the failure destination is optional"
    without = Evaluation(template, _scenario(template)).resources()["AsyncInvokeConfig"]
    assert "DestinationConfig" not in without
    assert not [
        action for action, _ in _granted(Evaluation(template, _scenario(template))) if action.startswith("mns:")
    ]


@pytest.mark.parametrize("region", REGIONS)
def test_the_send_permission_exists_before_the_failure_queue_is_named(template: dict[str, Any], region: str) -> None:
    evaluation = _with_failure_queue(template, region)
    resources = evaluation.resources()
    queue = resources["AsyncInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert queue == f"acs:mns:{region}:{evaluation.scenario.account_id}:/queues/esa-scheduler-failures/messages"
    assert set(resources["AsyncInvokeConfig"]["DestinationConfig"]) == {"OnFailure"}
    grants = [(action, targets) for action, targets in _granted(evaluation) if action.startswith("mns:")]
    assert grants == [("mns:SendMessage", [queue])], "the role may send to the failure queue, and only there"
    # Which resource grants it, and does AsyncInvokeConfig wait for that resource?
    granting = [
        name
        for name, properties in resources.items()
        if any(isinstance(node, dict) and node.get("Action") == ["mns:SendMessage"] for node in _walk(properties))
    ]
    assert granting, "no resource grants mns:SendMessage"
    waits_for = _depends_on(template, "AsyncInvokeConfig")
    assert set(granting) <= waits_for, f"AsyncInvokeConfig can name the queue before {granting} grant sending to it"


def test_invocations_are_serialized(template: dict[str, Any]) -> None:
    # One instance (reserved concurrency 1) handling one request at a time (instance concurrency 1):
    # a timer run and an incident event never interleave. See docs/deploy.md.
    (name,) = _resources(template, "ALIYUN::FC3::ConcurrencyConfig")
    limit = template["Resources"][name]["Properties"]
    function = next(iter(_resources(template, "ALIYUN::FC3::Function")))
    assert limit == {"FunctionName": {"Fn::GetAtt": [function, "FunctionName"]}, "ReservedConcurrency": 1}
    assert _only(template, "ALIYUN::FC3::Function")["InstanceConcurrency"] == 1
    (trigger,) = _resources(template, "ALIYUN::FC3::Trigger")
    assert {name, "AsyncInvokeConfig"} <= _depends_on(template, trigger), "the first tick must already be limited"
    deploy = DEPLOY_DOC.read_text(encoding="utf-8")
    assert "ConcurrencyConfig" in deploy and "serialized" in deploy, "docs/deploy.md must say why runs are serialized"


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
    esa = sorted(action for action, _ in _granted(_with_failure_queue(template)) if action.lower().startswith("esa:"))
    assert esa == sorted(f"esa:{action}" for action in ACTIONS)


def test_policy_grants_no_wildcard_action(template: dict[str, Any]) -> None:
    for action, _ in _granted(_with_failure_queue(template)):
        assert "*" not in action, f"wildcard action {action!r}"
        assert re.fullmatch(r"[a-z]+:[A-Za-z]+", action), action


def test_only_esa_is_granted_on_every_resource(template: dict[str, Any]) -> None:
    for action, targets in _granted(_with_failure_queue(template)):
        if "*" in targets:
            # ESA's delivery-task actions take no resource ARN; everything else is scoped.
            assert action.startswith("esa:"), action
        assert all(isinstance(target, (str, Unresolved)) for target in targets)


def _statements(evaluation: Evaluation, policy_suffix: str) -> list[dict[str, Any]]:
    return [s for name, doc in _policies(evaluation).items() if name.endswith(policy_suffix) for s in doc["Statement"]]


def test_target_roles_are_assumable_only_when_listed_and_exactly_those(template: dict[str, Any]) -> None:
    assert not any(action == "sts:AssumeRole" for action, _ in _granted(_with_failure_queue(template)))
    fleet = Evaluation(template, _scenario(template, TargetRoleArns=",".join(ROLE_ARNS)))
    assumed = [targets for action, targets in _granted(fleet) if action == "sts:AssumeRole"]
    assert assumed == [list(ROLE_ARNS)]
    (statement,) = _statements(fleet, "-assume-targets")
    assert statement["Action"] == ["sts:AssumeRole"]


def test_the_function_may_invoke_itself_only_for_async_fanout(template: dict[str, Any]) -> None:
    assert not any(action.startswith("fc:") for action, _ in _granted(_with_failure_queue(template)))
    fanout = Evaluation(template, _scenario(template, Fanout="async"))
    invoked = [targets for action, targets in _granted(fanout) if action == "fc:InvokeFunction"]
    assert invoked == [["acs:fc:cn-hangzhou:1234567890123456:functions/esa-scheduler"]]
    env = fanout.resources()["Function"]["EnvironmentVariables"]
    assert env["ESA_FANOUT"] == "async"


def test_async_fanout_turns_on_fcs_async_task_mode_and_only_it(template: dict[str, Any]) -> None:
    # FC refuses a reused x-fc-async-task-id (HTTP 409) for asynchronous tasks: the coordinator's
    # "no target dispatched twice" rests on it. A stack without fan-out keeps plain async invocations.
    def async_task(**overrides: str) -> Any:
        return Evaluation(template, _scenario(template, **overrides)).resources()["AsyncInvokeConfig"]["AsyncTask"]

    assert (async_task(), async_task(Fanout="inline"), async_task(Fanout="async")) == (False, False, True)
    assert problems("ALIYUN::FC3::AsyncInvokeConfig", {"FunctionName": "f", "AsyncTask": "yes"}, "A") == [
        "A.AsyncTask: must be a boolean, not 'yes'"
    ]


def test_the_target_role_template_trusts_only_the_scheduler_account() -> None:
    template = _load(ROOT / "templates" / "target-role.yml")
    evaluation = Evaluation(template, _scenario(template, SchedulerAccountId="1111222233334444"))
    (role,) = evaluation.resources().values()
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"RAM": ["acs:ram::1111222233334444:root"]}
    esa = sorted(action for action, _ in _granted(evaluation))
    assert esa == sorted(f"esa:{action}" for action in ACTIONS)
    assert template["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["TargetRole", "Arn"]}


# ---------------------------------------------------------------------------------------------
# configuration: config.py <-> docs/operations.md <-> template


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
        f"missing from docs/operations.md: {sorted(names - set(rows))}; not in config.py: {sorted(set(rows) - names)}"
    )
    for name, cells in rows.items():
        assert len(cells) >= 3 and all(cells[:3]), f"docs/operations.md row for {name} needs name, default and meaning"


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
            assert str(default) in rows[name][1], f"docs/operations.md default for {name} should say {default}"


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
        required = {
            "handler.py",
            "esa_scheduler/__init__.py",
            "esa_scheduler/invocation/function.py",
            "schedule/sample.yaml",
        }
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
        env = child_environment(
            {
                "HOME": str(tmp_path),  # no ~/.aliyun profile can leak in
                "PYTHONPATH": str(unzipped),
                "PYTHONDONTWRITEBYTECODE": "1",
                config.ENDPOINT: emulator.url,
                config.ACCESS_KEY_ID: EMULATOR_ACCESS_KEY_ID,
                config.ACCESS_KEY_SECRET: EMULATOR_ACCESS_KEY_SECRET,
                config.SCHEDULE: str(unzipped / "schedule"),
                config.STATE_DIR: str(state),
            }
        )
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
        # The nightly and monthly-reindex windows hold every task offline at 01:45Z on 5 Dec 2026.
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
