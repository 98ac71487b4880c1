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
from alibabacloud_fc20230330 import models as fc_models
from croniter import croniter
from helpers import child_environment
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from intake_support import TOKEN as INTAKE_TEST_TOKEN
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
from esa_scheduler.invocation.events.alerts import ALERT_EVENT_TYPES
from esa_scheduler.invocation.events.models import TimerEvent

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yml"
# template.yml and any template added under templates/ get the same specification checks.
TEMPLATES = [TEMPLATE, *sorted((ROOT / "templates").glob("*.yml"))]
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
EVENTS = ROOT / "events"
SUPPORTED_RUNTIMES = {"python3.10", "python3.12"}

# The ROS specification leaves a trigger's TriggerConfig a free map: FC 3.0's own models (the official
# SDK, a dev dependency) say which keys each trigger type reads.
FC_TRIGGER_CONFIGS = {
    "timer": fc_models.TimerTriggerConfig,
    "http": fc_models.HTTPTriggerConfig,
    "eventbridge": fc_models.EventBridgeTriggerConfig,
}
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
# Optional without a default: unset, the intake invokes the scheduler function unqualified (LATEST, the
# version its timer trigger runs).
OPTIONAL_VARIABLES = {config.SCHEDULER_QUALIFIER}


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


def _only_name(template: dict[str, Any], kind: str) -> str:
    """The one ``kind`` every stack creates (no ``Condition``): the scheduler's function, role, timer..."""
    found = [name for name, body in _resources(template, kind).items() if "Condition" not in body]
    assert len(found) == 1, f"expected exactly one unconditional {kind}, found {sorted(found)}"
    return found[0]


def _only(template: dict[str, Any], kind: str) -> dict[str, Any]:
    """The properties of ``_only_name``; what an optional parameter adds (the intake) is tested apart."""
    return template["Resources"][_only_name(template, kind)]["Properties"]  # type: ignore[no-any-return]


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{name: properties}`` of every function, the optional ones (the intake) included."""
    return {name: body["Properties"] for name, body in _resources(template, "ALIYUN::FC3::Function").items()}


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


def _policies(evaluation: Evaluation, role: str | None = None) -> dict[str, dict[str, Any]]:
    """``{policy name: policy document}`` of every RAM policy the evaluated stack creates, or only of
    those ``role`` (a resource name) gets: its own, and the managed policies attached to it."""
    template, resources = evaluation.template, evaluation.resources()
    found: dict[str, dict[str, Any]] = {}
    for name, properties in resources.items():
        kind = template["Resources"][name]["Type"]
        if kind == "ALIYUN::RAM::Role" and role in {None, name}:
            found.update({policy["PolicyName"]: policy["PolicyDocument"] for policy in properties.get("Policies", [])})
        elif kind == "ALIYUN::RAM::ManagedPolicy" and (
            role is None or Unresolved(f"{role}.RoleName") in properties["Roles"]
        ):
            found[properties["PolicyName"]] = properties["PolicyDocument"]
    return found


def _granted(evaluation: Evaluation, role: str | None = None) -> list[tuple[str, list[Any]]]:
    """``(action, resources)`` for every action of every Allow statement of every policy (of ``role``)."""
    granted: list[tuple[str, list[Any]]] = []
    for document in _policies(evaluation, role).values():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            actions, targets = statement["Action"], statement["Resource"]
            targets = targets if isinstance(targets, list) else [targets]
            granted += [(action, targets) for action in ([actions] if isinstance(actions, str) else actions)]
    return granted


def _outputs(evaluation: Evaluation) -> dict[str, Any]:
    """``{name: evaluated value}`` of every output whose ``Condition`` holds."""
    outputs = evaluation.template.get("Outputs", {})
    return {
        name: evaluation.value(body["Value"])
        for name, body in outputs.items()
        if "Condition" not in body or evaluation.condition(body["Condition"])
    }


def _intake(template: dict[str, Any], region: str = REGIONS[0], **overrides: Any) -> Evaluation:
    """The stack with the incident intake (Intake=enabled) and every other default."""
    return Evaluation(template, _scenario(template, region, Intake="enabled", **overrides))


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


@pytest.mark.parametrize("intake", ["disabled", "enabled"])
def test_stacks_in_two_regions_with_the_defaults_do_not_collide(template: dict[str, Any], intake: str) -> None:
    first, second = (
        set(_account_wide_names(Evaluation(template, _scenario(template, region, Intake=intake))).values())
        for region in REGIONS[:2]
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
    if "Intake" in template.get("Parameters", {}):  # and the intake's role
        overrides["Intake"] = "enabled"
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
    intake = _intake(template, "ap-southeast-1")
    assert _account_wide_names(intake)["IntakeRole role"] == "esa-scheduler-ap-southeast-1-intake"
    assert set(_policies(intake, "IntakeRole")) == {"esa-scheduler-ap-southeast-1-intake-policy"}


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
        # the token travels in CloudMonitor's webhook URL (?token=): unreserved URL characters only
        (
            "IntakeToken",
            ["", "0123456789abcdef" * 4, "A-b_c.d~" * 2, "t" * 128],
            ["t" * 15, "t" * 129, "with space 12345", "plus+sign+123456", "pct%20encoded123", "slash/slash/12345"],
        ),
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
    for name, function in _functions(template).items():
        module_name, _, attribute = function["Handler"].rpartition(".")
        assert module_name == "handler", f"{name}: FC loads <file>.<function>; the package ships handler.py at its root"
        entry = getattr(_handler_module(monkeypatch, module_name), attribute)
        assert callable(entry), name
        inspect.signature(entry).bind(b"{}", object())  # FC calls handler(event, context)


def test_runtime_is_a_supported_python_and_matches_the_packaged_wheels(template: dict[str, Any]) -> None:
    function = _only(template, "ALIYUN::FC3::Function")
    # one code package, one set of wheels: every function runs it on the same Python
    assert {other["Runtime"] for other in _functions(template).values()} == {function["Runtime"]}
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
    # Every function (the intake too) reads and writes the same holds.
    for name, function in _functions(template).items():
        env = function["EnvironmentVariables"]
        (mount,) = function["OssMountConfig"]["MountPoints"]
        assert env[config.STATE_DIR] == mount["MountDir"] == {"Ref": "StateMountDir"}, name
        assert mount["ReadOnly"] is False, name
        assert str(_default(template, mount["MountDir"])).startswith("/mnt/")
        assert mount["BucketName"] == {"Ref": "StateBucket"}, name


def test_schedule_path_is_the_packaged_schedule_directory(template: dict[str, Any]) -> None:
    for name, function in _functions(template).items():
        # FC unpacks the code zip at /code; the zip carries schedule/ at its root.
        assert function["EnvironmentVariables"][config.SCHEDULE] == "/code/schedule", name
        assert function["Code"] == _only(template, "ALIYUN::FC3::Function")["Code"], f"{name} runs another package"
    assert _package_script().SOURCES.count("schedule") == 1


def test_logs_go_to_the_project_and_logstore_the_template_creates(template: dict[str, Any]) -> None:
    log = _only(template, "ALIYUN::FC3::Function")["LogConfig"]
    assert all(function["LogConfig"] == log for function in _functions(template).values()), "one logstore"
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
    # holds, and the intake's answers, alerts and chat commands, by the fields docs/incidents.md lists
    assert {"hold_id", "reason", "route", "status", "name", "state", "key", "severity", "rule"} <= indexed
    assert {"sender", "verb", "outcome"} <= indexed


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
    function = _only_name(template, "ALIYUN::FC3::Function")
    assert limit == {"FunctionName": {"Fn::GetAtt": [function, "FunctionName"]}, "ReservedConcurrency": 1}
    assert _only(template, "ALIYUN::FC3::Function")["InstanceConcurrency"] == 1
    # Every trigger, and the intake that dispatches to the function, opens once the limit is in place.
    triggers = _resources(template, "ALIYUN::FC3::Trigger")
    assert {"TimerTrigger", "CloudMonitorTrigger", "IntakeHttpTrigger"} <= set(triggers)
    for trigger in triggers:
        assert {name, "AsyncInvokeConfig"} <= _depends_on(template, trigger), f"{trigger} opens before the limit"
    deploy = DEPLOY_DOC.read_text(encoding="utf-8")
    assert "ConcurrencyConfig" in deploy and "serialized" in deploy, "docs/deploy.md must say why runs are serialized"


def test_outputs_name_the_function_and_its_arn(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    function = _only_name(template, "ALIYUN::FC3::Function")
    assert outputs["FunctionName"]["Value"] == {"Fn::GetAtt": [function, "FunctionName"]}
    assert outputs["FunctionArn"]["Value"] == {"Fn::GetAtt": [function, "ARN"]}


# ---------------------------------------------------------------------------------------------
# least privilege


def test_roles_are_assumable_by_function_compute_only(template: dict[str, Any]) -> None:
    roles = _resources(template, "ALIYUN::RAM::Role")
    for body in roles.values():
        (statement,) = body["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRole"
        assert statement["Principal"] == {"Service": ["fc.aliyuncs.com"]}
    # each function has a role of its own, and no role serves two functions
    used = [function["Role"]["Fn::GetAtt"] for function in _functions(template).values()]
    assert sorted(used) == sorted([role, "Arn"] for role in roles)
    scheduler_role = _only_name(template, "ALIYUN::RAM::Role")
    assert _only(template, "ALIYUN::FC3::Function")["Role"] == {"Fn::GetAtt": [scheduler_role, "Arn"]}


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


def test_async_fanout_and_the_intake_turn_on_fcs_async_task_mode_and_only_they(template: dict[str, Any]) -> None:
    # FC refuses a reused x-fc-async-task-id (HTTP 409) for asynchronous tasks: the coordinator's
    # "no target dispatched twice" rests on it. A stack without either keeps plain async invocations.
    def async_task(**overrides: str) -> Any:
        return Evaluation(template, _scenario(template, **overrides)).resources()["AsyncInvokeConfig"]["AsyncTask"]

    assert (async_task(), async_task(Fanout="inline"), async_task(Fanout="async")) == (False, False, True)
    # the intake sends a task id derived from the request, so that a retried callback reconciles once
    assert async_task(Intake="enabled") is True
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
# optional parts: the incident intake (Intake) and CloudMonitor's EventBridge trigger (CloudMonitorEvents)

TODAY_RESOURCES = {
    "FunctionRole",
    "LogProject",
    "Logstore",
    "LogIndex",
    "Function",
    "AsyncInvokeConfig",
    "ConcurrencyConfig",
    "TimerTrigger",
}
"""What every stack has, with or without fleets and failure queue, before the optional parts."""
TODAY_OPTIONAL = {"TargetRolePolicy", "FanoutPolicy"}
TODAY_OUTPUTS = {"FunctionName", "FunctionArn", "RoleArn", "LogProject", "Logstore"}
INTAKE_RESOURCES = {"IntakeRole", "IntakeFunction", "IntakeHttpTrigger"}
SECRET_VARIABLES = {
    config.NOTIFY_URL_1,
    config.NOTIFY_SECRET_1,
    config.NOTIFY_URL_2,
    config.NOTIFY_SECRET_2,
    config.INTAKE_TOKEN,
    config.DINGTALK_APP_SECRET,
}
"""Variables holding a secret: each comes from a NoEcho parameter, and nothing else refers to it."""
EVERYTHING = {"FailureDestinationQueue": "esa-failures", "Fanout": "async", "TargetRoleArns": ",".join(ROLE_ARNS)}
"""Every other option that grants permissions: the intake's role must still get none of them."""


def test_the_optional_parts_are_off_unless_asked_for(template: dict[str, Any]) -> None:
    for name in ("Intake", "CloudMonitorEvents"):
        parameter = template["Parameters"][name]
        assert (parameter["Default"], parameter["AllowedValues"]) == ("disabled", ["disabled", "enabled"]), name


@pytest.mark.parametrize(
    "overrides",
    [{}, {"FailureDestinationQueue": "esa-failures"}, {"Fanout": "async"}, {"TargetRoleArns": ",".join(ROLE_ARNS)}],
    ids=["defaults", "failure-queue", "fanout", "fleet"],
)
def test_with_both_off_the_stack_is_todays(template: dict[str, Any], overrides: dict[str, str]) -> None:
    off = Evaluation(template, _scenario(template, **overrides))
    resources = off.resources()
    assert TODAY_RESOURCES <= set(resources) <= TODAY_RESOURCES | TODAY_OPTIONAL
    assert set(_outputs(off)) == TODAY_OUTPUTS
    env = resources["Function"]["EnvironmentVariables"]
    assert not {config.INTAKE_TOKEN, config.DINGTALK_APP_SECRET, config.SCHEDULER_FUNCTION} & set(env)
    assert resources["AsyncInvokeConfig"]["AsyncTask"] is (overrides.get("Fanout") == "async")
    # The intake's secrets, given while it is off, change nothing at all.
    secrets = Evaluation(
        template, _scenario(template, IntakeToken="t" * 32, DingTalkAppSecret="dingtalk-app-secret", **overrides)
    )
    assert secrets.resources() == resources
    assert _outputs(secrets) == _outputs(off)


@pytest.mark.parametrize(
    ("parameter", "added", "changed", "outputs"),
    [
        ("Intake", INTAKE_RESOURCES, {"AsyncInvokeConfig": {"AsyncTask"}}, {"IntakeUrl"}),
        ("CloudMonitorEvents", {"CloudMonitorTrigger"}, {}, set()),
    ],
)
def test_each_option_adds_its_resources_and_changes_nothing_else(
    template: dict[str, Any], parameter: str, added: set[str], changed: dict[str, set[str]], outputs: set[str]
) -> None:
    off = Evaluation(template, _scenario(template))
    on = Evaluation(template, _scenario(template, **{parameter: "enabled"}))
    before, after = off.resources(), on.resources()
    assert set(after) - set(before) == added
    assert set(before) <= set(after)
    differences = {
        name: {key for key in before[name].keys() | after[name].keys() if before[name].get(key) != after[name].get(key)}
        for name in before
        if before[name] != after[name]
    }
    assert differences == changed
    assert set(_outputs(on)) - set(_outputs(off)) == outputs
    assert {name: value for name, value in _outputs(on).items() if name not in outputs} == _outputs(off)


@pytest.mark.parametrize("region", REGIONS)
def test_resources_match_the_specification_with_every_option_on(template: dict[str, Any], region: str) -> None:
    evaluation = _intake(template, region, CloudMonitorEvents="enabled", **EVERYTHING)
    assert INTAKE_RESOURCES | {"CloudMonitorTrigger"} <= set(evaluation.resources())
    for name, properties in evaluation.resources().items():
        assert problems(template["Resources"][name]["Type"], properties, name) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_what_refers_to_an_optional_resource_exists_only_with_it(path: Path) -> None:
    # ROS refuses a stack in which a resource or an output refers to a resource its condition left out.
    template = _load(path)
    resources = template["Resources"]
    bodies = {f"resource {name}": body for name, body in resources.items()}
    bodies.update({f"output {name}": body for name, body in template.get("Outputs", {}).items()})
    for where, body in bodies.items():
        depends = body.get("DependsOn", [])
        targets = {depends} if isinstance(depends, str) else set(depends)
        for function, argument in references(body):
            if function == "Ref" and argument in resources:
                targets.add(argument)
            elif function == "Fn::GetAtt":
                targets.add(argument[0])
        for target in sorted(targets):
            needed = resources[target].get("Condition")
            assert needed is None or body.get("Condition") == needed, f"{where} needs {target}, only made if {needed}"


def test_the_intake_runs_the_same_package_on_the_same_state_with_its_own_limits(template: dict[str, Any]) -> None:
    resources = _intake(template).resources()
    scheduler, intake = resources["Function"], resources["IntakeFunction"]
    assert intake["FunctionName"] == "esa-scheduler-intake"
    assert intake["Handler"] == "handler.intake"
    for same in ("Runtime", "Code", "LogConfig", "OssMountConfig"):
        assert intake[same] == scheduler[same], same
    # CloudMonitor waits 5 s for an answer and retries: the intake answers at once or not at all.
    assert intake["Timeout"] == 10
    assert intake["InstanceConcurrency"] == 1
    # No reserved concurrency: the one ConcurrencyConfig is the scheduler's.
    limits = [
        properties["FunctionName"]
        for name, properties in resources.items()
        if template["Resources"][name]["Type"] == "ALIYUN::FC3::ConcurrencyConfig"
    ]
    assert limits == [Unresolved("Function.FunctionName")]
    env, scheduler_env = intake["EnvironmentVariables"], scheduler["EnvironmentVariables"]
    for variable in (config.SCHEDULE, config.STATE_DIR, config.LOG_LEVEL, config.NETWORK):
        assert env[variable] == scheduler_env[variable], variable
    assert env[config.SCHEDULER_FUNCTION] == Unresolved("Function.FunctionName")
    # What it needs and nothing more: no ESA settings, no notification URLs.
    assert set(env) == {
        config.SCHEDULE,
        config.STATE_DIR,
        config.LOG_LEVEL,
        config.NETWORK,
        config.SCHEDULER_FUNCTION,
        config.INTAKE_TOKEN,
        config.DINGTALK_APP_SECRET,
    }


@pytest.mark.parametrize("region", REGIONS)
def test_the_intake_role_may_invoke_the_scheduler_and_nothing_in_esa(template: dict[str, Any], region: str) -> None:
    evaluation = _intake(template, region, **EVERYTHING)
    granted = _granted(evaluation, "IntakeRole")
    assert not [action for action, _ in granted if action.lower().startswith(("esa:", "sts:", "mns:"))], granted
    invoke = [(action, targets) for action, targets in granted if action.lower().startswith("fc:")]
    scheduler_arn = f"acs:fc:{region}:{evaluation.scenario.account_id}:functions/esa-scheduler"
    assert invoke == [("fc:InvokeFunction", [scheduler_arn])]
    # Besides: its logs and the state mount, exactly as the scheduler's role has them.
    rest = [grant for grant in granted if grant not in invoke]
    scheduler = _granted(evaluation, "FunctionRole")
    assert {action for action, _ in rest} == {
        "log:PostLogStoreLogs",
        "oss:ListObjects",
        "oss:GetObject",
        "oss:PutObject",
        "oss:DeleteObject",
        "oss:ListParts",
        "oss:AbortMultipartUpload",
    }
    assert all(grant in scheduler for grant in rest)
    # And the intake gives the scheduler's role nothing new.
    assert _granted(Evaluation(template, _scenario(template, region, **EVERYTHING)), "FunctionRole") == scheduler


def test_the_intake_trigger_is_anonymous_and_its_url_an_output(template: dict[str, Any]) -> None:
    evaluation = _intake(template)
    trigger = evaluation.resources()["IntakeHttpTrigger"]
    assert trigger["FunctionName"] == Unresolved("IntakeFunction.FunctionName")
    assert trigger["TriggerType"] == "http"
    # The code checks the token and the DingTalk signature: neither sender can sign an FC request.
    assert trigger["TriggerConfig"] == {"authType": "anonymous", "methods": ["GET", "POST"]}
    assert "InvocationRole" not in trigger
    assert _outputs(evaluation)["IntakeUrl"] == Unresolved("IntakeHttpTrigger.UrlInternet")


def test_cloudmonitor_alerts_reach_the_scheduler_through_eventbridge(template: dict[str, Any]) -> None:
    trigger = Evaluation(template, _scenario(template, CloudMonitorEvents="enabled")).resources()["CloudMonitorTrigger"]
    assert trigger["FunctionName"] == Unresolved("Function.FunctionName")
    assert trigger["TriggerType"] == "eventbridge"
    settings = trigger["TriggerConfig"]
    pattern = json.loads(settings["eventRuleFilterPattern"])
    assert pattern == {"source": ["acs.cms"], "type": ["cms:CloudMonitor:AlertWebHook"]}
    assert settings["eventSourceConfig"] == {"eventSourceType": "Default"}, "Alibaba Cloud's own events"
    assert settings["eventSinkConfig"] == {"deliveryOption": {"eventSchema": "CloudEvents"}}, "what handler reads"
    assert settings["runOptions"] == {"mode": "event-driven"}, "one event per invocation"
    # Asynchronous: queued behind a running reconcile like the timer's ticks, not throttled.
    assert (settings["triggerEnable"], settings["asyncInvocationType"]) == (True, True)


def test_the_eventbridge_filter_admits_the_cloudmonitor_events_the_handler_reads(template: dict[str, Any]) -> None:
    # The filter, the handler's alert types and the handler's real-shaped fixtures name the same events.
    trigger = Evaluation(template, _scenario(template, CloudMonitorEvents="enabled")).resources()["CloudMonitorTrigger"]
    pattern = json.loads(trigger["TriggerConfig"]["eventRuleFilterPattern"])
    assert {ALERT_EVENT_TYPES[kind] for kind in pattern["type"]} == {"cloudmonitor"}

    def admitted(event: dict[str, Any]) -> bool:
        return all(event.get(field) in values for field, values in pattern.items())

    fixtures = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(EVENTS.glob("*.json"))}
    cloudmonitor = {name for name in fixtures if name.startswith("cloudevent-cms-")}
    assert cloudmonitor, "events/ has no CloudMonitor CloudEvent to check the filter with"
    assert {name for name, event in fixtures.items() if admitted(event)} == cloudmonitor


def _trigger_config_problems(trigger_type: str, settings: dict[str, Any]) -> list[str]:
    """What FC 3.0's model of ``trigger_type``'s configuration would not read back as written."""
    if trigger_type not in FC_TRIGGER_CONFIGS:
        return [f"no FC 3.0 model for {trigger_type} triggers"]
    read = FC_TRIGGER_CONFIGS[trigger_type]().from_map(settings).to_map()
    return [] if read == settings else [f"{trigger_type}: {settings} reads back as {read}"]


def test_every_trigger_config_is_one_fc_reads(template: dict[str, Any]) -> None:
    resources = _intake(template, CloudMonitorEvents="enabled").resources()
    triggers = {name: properties for name, properties in resources.items() if "TriggerConfig" in properties}
    assert set(triggers) == {"TimerTrigger", "IntakeHttpTrigger", "CloudMonitorTrigger"}
    for properties in triggers.values():
        assert _trigger_config_problems(properties["TriggerType"], properties["TriggerConfig"]) == []


@pytest.mark.parametrize(
    ("trigger_type", "settings"),
    [
        ("http", {"authtype": "anonymous", "methods": ["GET"]}),
        ("eventbridge", {"triggerEnable": True, "eventSinkConfig": {"deliveryOption": {"eventschema": "CloudEvents"}}}),
        ("timer", {"cronExpression": "0 * * * * *", "enabled": True}),
        ("oss", {"events": ["oss:ObjectCreated:*"]}),
    ],
)
def test_the_trigger_config_check_catches_what_fc_would_ignore(trigger_type: str, settings: dict[str, Any]) -> None:
    # A misspelt key, nested or not, is dropped by FC without a word: the check must see it.
    assert _trigger_config_problems(trigger_type, settings) != []


def test_secrets_come_from_noecho_parameters_and_go_nowhere_else(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    passed: dict[str, str] = {}
    for function, properties in _functions(template).items():
        for name, value in properties["EnvironmentVariables"].items():
            if name in SECRET_VARIABLES:
                assert set(value) == {"Ref"}, f"{function}: {name} must come from a parameter"
                assert parameters[value["Ref"]].get("NoEcho") is True, f"{value['Ref']} must be NoEcho"
                assert parameters[value["Ref"]]["Default"] == "", f"{value['Ref']} is optional"
                passed[name] = value["Ref"]
    assert set(passed) == SECRET_VARIABLES
    assert (passed[config.INTAKE_TOKEN], passed[config.DINGTALK_APP_SECRET]) == ("IntakeToken", "DingTalkAppSecret")
    # Each secret parameter is read once, by one function's environment: no output, no other property.
    read = [argument for function, argument in references(template) if function == "Ref"]
    assert all(read.count(parameter) == 1 for parameter in passed.values())
    scheduler = _only(template, "ALIYUN::FC3::Function")["EnvironmentVariables"]
    assert not {config.INTAKE_TOKEN, config.DINGTALK_APP_SECRET} & set(scheduler), "only the intake needs them"


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
    env = {name for function in _functions(template).values() for name in function["EnvironmentVariables"]}
    for constant, name in _config_variables().items():
        if name in CREDENTIAL_VARIABLES | PLATFORM_VARIABLES | OPTIONAL_VARIABLES:
            continue
        assert hasattr(config, f"DEFAULT_{constant}") or name in env, (
            f"{name} has no default in config.py and the template does not set it"
        )


def test_template_sets_only_variables_the_code_reads(template: dict[str, Any]) -> None:
    names = set(_config_variables().values())
    scheduler_name = {"Fn::GetAtt": [_only_name(template, "ALIYUN::FC3::Function"), "FunctionName"]}
    for function, properties in _functions(template).items():
        env = properties["EnvironmentVariables"]
        assert set(env) <= names, f"unknown variables in {function}: {sorted(set(env) - names)}"
        assert not set(env) & CREDENTIAL_VARIABLES, "no keys in the template: the function role provides credentials"
        assert not any(name.startswith("FC_") for name in env), "FC_* variables are reserved by Function Compute"
        for name, value in env.items():
            # a literal, a parameter, or (the intake's ESA_SCHEDULER_FUNCTION) the scheduler function's name
            assert isinstance(value, str) or set(value) == {"Ref"} or value == scheduler_name, f"{function}: {name}"
    scheduler_env = _only(template, "ALIYUN::FC3::Function")["EnvironmentVariables"]
    assert config.REGION in scheduler_env or config.ENDPOINT in scheduler_env


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


@pytest.fixture(scope="module")
def package_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/esa-scheduler.zip as make package builds it, built once for the tests that run it."""
    root = tmp_path_factory.mktemp("package")
    built: Path = _package_script().build(root / "esa-scheduler.zip", root / "build", deps_from_env=True)
    return built


@pytest.mark.slow
def test_zip_runs_the_handler_from_its_unzipped_tree(package_zip: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(package_zip) as archive:
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


RUN_INTAKE_FROM_ZIP = r"""
import json, sys, types
from pathlib import Path

import handler

context = types.SimpleNamespace(
    request_id="fc-req-2",
    region="cn-hangzhou",
    function=types.SimpleNamespace(name="esa-scheduler-intake", handler="handler.intake", memory=256, timeout=10),
)
response = handler.intake(Path(sys.argv[2]).read_bytes(), context)
Path(sys.argv[1]).write_text(json.dumps(response))
"""


@pytest.mark.slow
def test_zip_runs_the_intake_which_dispatches_to_the_scheduler_function(package_zip: Path, tmp_path: Path) -> None:
    # The template's intake function: the same zip, handler.intake, the token and ESA_SCHEDULER_FUNCTION
    # in the variables the template sets, and FC (the emulator's) to dispatch the reconcile to.
    with zipfile.ZipFile(package_zip) as archive:
        archive.extractall(tmp_path / "code")
    unzipped, state, result_file = tmp_path / "code", tmp_path / "state", tmp_path / "response.json"
    dispatched: list[bytes] = []
    with Emulator(functions={"esa-scheduler": dispatched.append}) as emulator:
        env = child_environment(
            {
                "HOME": str(tmp_path),
                "PYTHONPATH": str(unzipped),
                "PYTHONDONTWRITEBYTECODE": "1",
                config.SCHEDULE: str(unzipped / "schedule"),
                config.STATE_DIR: str(state),
                config.INTAKE_TOKEN: INTAKE_TEST_TOKEN,
                config.SCHEDULER_FUNCTION: "esa-scheduler",
                config.FC_ENDPOINT: emulator.url,
                config.ACCESS_KEY_ID: EMULATOR_ACCESS_KEY_ID,
                config.ACCESS_KEY_SECRET: EMULATOR_ACCESS_KEY_SECRET,
            }
        )
        alert = EVENTS / "intake-cloudmonitor-alert.json"  # carries ?token=<the test token>
        completed = subprocess.run(
            [sys.executable, "-S", "-c", RUN_INTAKE_FROM_ZIP, str(result_file), str(alert)],
            cwd=unzipped,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        (invocation,) = emulator.wait_for_invocations(1, timeout=30)

    response = json.loads(result_file.read_text(encoding="utf-8"))
    assert response["statusCode"] == 200, response
    answer = json.loads(response["body"])
    (hold,) = answer["holds"]["created"]
    assert (answer["ok"], answer["alerts"], answer["matched"], answer["reconcile"]) == (True, 1, 1, "dispatched")
    assert (state / f"{hold}.json").is_file(), "the hold is on the state mount the scheduler reads"
    assert (invocation.function, invocation.invocation_type) == ("esa-scheduler", "Async")
    assert invocation.task_id, "a task id, so that FC refuses a retried callback's second reconcile"
    assert [json.loads(event) for event in dispatched] == [{"action": "reconcile", "touched": [hold]}]
    assert INTAKE_TEST_TOKEN not in completed.stdout + completed.stderr
