"""The ROS resource specification, read offline, and a ROS template evaluated against it.

Why: ROS itself only validates a template when a stack is created, which needs an account. Every
``ros-cdk-<service>`` wheel on PyPI carries the specification its code is generated from: the
``.jsii.tgz`` inside it holds ``package/lib/<service>.generated.js``, where each resource type has a
validator (required properties, types, ranges, lengths, patterns, allowed values), a mapper from the
CDK's camelCase names to the template's PascalCase ones, and its ``Fn::GetAtt`` attributes. This module
reads those files with Python (no Node, no jsii) and checks a template's resources against them, so a
misspelt property, a wrong type or an out-of-range value fails ``pytest`` instead of a deployment.

The reader is strict: a line of a validator or mapper it does not understand raises ``SpecFormatError``
naming the file and function, so a new spec construct is noticed rather than silently skipped.

The second half evaluates a template for one set of parameter values (a ``Scenario``): conditions,
``Ref``, ``Fn::Join``, ``Fn::If``... What only exists once deployed (``Fn::GetAtt``, a ``Ref`` to a
resource) stays ``Unresolved``, and the checks skip it, exactly as the CDK validators skip tokens.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import re
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------- the specification


class SpecFormatError(Exception):
    """A generated validator or mapper uses a construct this reader does not know."""


@dataclass(frozen=True)
class Shape:
    """The type of one property value: a primitive, a struct, or a list/map of a shape."""

    kind: str  # "string" | "number" | "boolean" | "any" | "struct" | "list" | "map"
    item: Shape | None = None
    struct: str | None = None  # the mapper function naming the struct, for kind "struct"

    def describe(self) -> str:
        if self.item is not None:
            return f"{self.kind} of {self.item.describe()}"
        return self.kind


@dataclass
class Rule:
    """What the specification says about one property."""

    shape: Shape
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    allowed: tuple[Any, ...] | None = None
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Struct:
    """A property bag: a resource's properties, or a nested property type such as ``Function.Code``."""

    title: str  # e.g. "ALIYUN::FC3::Function" or "ALIYUN::FC3::Function.LogConfig"
    rules: Mapping[str, Rule]  # by PascalCase name, as written in a template


@dataclass(frozen=True)
class ResourceType:
    """One ``ALIYUN::<service>::<type>``: its properties, its ``Fn::GetAtt`` attributes, where it was read."""

    name: str
    properties: Struct
    attributes: frozenset[str]
    package: str  # the distribution and version it came from, as pinned: "ros-cdk-fc3==1.15.0"


@dataclass(frozen=True)
class ServiceSpec:
    """Everything one ``<service>.generated.js`` specifies."""

    resources: Mapping[str, ResourceType]
    structs: Mapping[str, Struct]  # by mapper function name


_FUNCTION = re.compile(r"^function (\w+)\(([^)]*)\) \{\n(.*?)^\}$", re.M | re.S)
_RENDERS = re.compile(r"Renders the AliCloud ROS Resource properties of an? `([^`]+)` resource")
_CLASS = re.compile(r"^class (\w+) extends ros\.RosResource \{\n(.*?)^\}$", re.M | re.S)
_TYPE_NAME = re.compile(r'^(\w+)\.ROS_RESOURCE_TYPE_NAME = "([^"]+)";$', re.M)
_RENDER_CALL = re.compile(
    r"renderProperties\(props\) \{\s*return (\w+)\(props, this\.enableResourcePropertyConstraint\);"
)
_GET_ATT = re.compile(r"this\.getAtt\('([^']+)'\)")
_MAPPER_LINK = re.compile(r"(\w+Validator)\(properties\)\.assertSuccess\(\);")
_MAPPER_RETURN = re.compile(r"return \{\n(.*?)\n\s*\};", re.S)
_MAPPER_ENTRY = re.compile(r"'([^']+)': (.+)\(properties\.(\w+)\),")  # names are as the spec spells them
# Each primitive shape as the mappers and as the validators spell it.
_PRIMITIVES = (
    (Shape("string"), "ros.stringToRosTemplate", "ros.validateString"),
    (Shape("number"), "ros.numberToRosTemplate", "ros.validateNumber"),
    (Shape("boolean"), "ros.booleanToRosTemplate", "ros.validateBoolean"),
    (Shape("any"), "ros.objectToRosTemplate", "ros.validateAny"),
    (Shape("map", item=Shape("any")), "ros.anyDictToRosTemplate", "ros.validateAnyDict"),
)
_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "number": (int, float),
    "boolean": bool,
    "list": list,
    "map": dict,
}
# One validator statement each; together they must account for the whole validator body.
_V_REQUIRED = re.compile(
    r"errors\.collect\(ros\.propertyValidator\('(\w+)', ros\.requiredValidator\)\(properties\.\1\)\);"
)
_V_BOUNDS = re.compile(
    r"errors\.collect\(ros\.propertyValidator\('(\w+)', ros\.(validateRange|validateLength)\)\(\{\s*"
    r"data: properties\.\1(?:\.length)?,\s*min: ([^,\n]+),\s*max: ([^,\n]+),\s*\}\)\);"
)
_V_ALLOWED = re.compile(
    r"errors\.collect\(ros\.propertyValidator\('(\w+)', ros\.validateAllowedValues\)\(\{\s*"
    r"data: properties\.\1,\s*allowedValues: (\[.*?\]),\s*\}\)\);"
)
_V_PATTERN = re.compile(
    r"errors\.collect\(ros\.propertyValidator\('(\w+)', ros\.validateAllowedPattern\)\(\{\s*"
    r"data: properties\.\1,\s*reg: /(.*)/([a-z]*)\n\s*\}\)\);"
)
_V_TYPE = re.compile(r"errors\.collect\(ros\.propertyValidator\('(\w+)', (.+)\)\(properties\.\1\)\);")
_V_BOILERPLATE = re.compile(
    r"if \(!ros\.canInspect\(properties\)\) \{\s*return ros\.VALIDATION_SUCCESS;\s*\}"
    r"|const errors = new ros\.ValidationResults\(\);"
    r"|return errors\.wrap\('[^']*'\);"
    r"|if \(properties\.(\w+) && \([^\n]*\) \{"  # the guard around a constraint: checks literals only
    r"|\}"
)
_JS_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "u": 0, "g": 0}


def _js_number(text: str) -> float | None:
    text = text.strip()
    if text == "undefined":
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


def _js_regex(source: str, flags: str, where: str) -> re.Pattern[str]:
    """A JavaScript regex literal as a Python pattern (``test()`` is a search, like ``re.search``)."""
    python_flags = 0
    for flag in flags:
        if flag not in _JS_REGEX_FLAGS:
            raise SpecFormatError(f"{where}: regex flag {flag!r} has no Python equivalent")
        python_flags |= _JS_REGEX_FLAGS[flag]
    try:
        return re.compile(source.replace("\\/", "/"), python_flags)
    except re.error as error:
        raise SpecFormatError(f"{where}: cannot read /{source}/ as a Python regex: {error}") from error


@dataclass(frozen=True)
class _Spelling:
    """How one side of the generated code writes a shape: the mappers, or the validators."""

    what: str
    primitives: Mapping[str, Shape]
    container: re.Pattern[str]  # group 1: the map or list function, group 2: its element's spelling
    map_function: str
    struct: re.Pattern[str]


def _spelling(what: str, column: int, map_function: str, list_function: str, struct: str) -> _Spelling:
    return _Spelling(
        what=what,
        primitives={str(row[column]): row[0] for row in _PRIMITIVES},
        container=re.compile(rf"ros\.({map_function}|{list_function})\((.+)\)"),
        map_function=map_function,
        struct=re.compile(struct),
    )


_MAPPERS = _spelling("mapper", 1, "hashMapper", "listMapper", r"ros\w+PropertyToRosTemplate")
_VALIDATORS = _spelling("validator", 2, "hashValidator", "listValidator", r"Ros\w+PropertyValidator")


def _shape(expression: str, spelling: _Spelling, where: str) -> Shape:
    if expression in spelling.primitives:
        return spelling.primitives[expression]
    container = spelling.container.fullmatch(expression)
    if container:
        kind = "map" if container.group(1) == spelling.map_function else "list"
        return Shape(kind, item=_shape(container.group(2), spelling, where))
    if spelling.struct.fullmatch(expression):
        return Shape("struct", struct=expression)
    raise SpecFormatError(f"{where}: unknown {spelling.what} {expression!r}")


def _same_kind(mapped: Shape, validated: Shape) -> bool:
    if mapped.kind != validated.kind:
        return False
    if mapped.item is None or validated.item is None:
        return mapped.item is validated.item
    return _same_kind(mapped.item, validated.item)


def _parse_validator(body: str, where: str) -> dict[str, dict[str, Any]]:
    """``{camelName: facts}`` from one validator body; raises on any statement it cannot account for."""
    facts: dict[str, dict[str, Any]] = {}

    def note(name: str, **values: Any) -> str:
        facts.setdefault(name, {}).update(values)
        return ""

    def bounds(match: re.Match[str]) -> str:
        low, high = _js_number(match.group(3)), _js_number(match.group(4))
        if match.group(2) == "validateRange":
            return note(match.group(1), minimum=low, maximum=high)
        return note(match.group(1), min_length=low, max_length=high)

    def allowed(match: re.Match[str]) -> str:
        try:
            values = tuple(json.loads(match.group(2)))
        except json.JSONDecodeError as error:
            raise SpecFormatError(f"{where}: allowed values {match.group(2)} are not JSON") from error
        return note(match.group(1), allowed=values)

    def pattern(match: re.Match[str]) -> str:
        return note(match.group(1), pattern=_js_regex(match.group(2), match.group(3), where))

    def typed(match: re.Match[str]) -> str:
        return note(match.group(1), validated=_shape(match.group(2), _VALIDATORS, where))

    rest = _V_REQUIRED.sub(lambda match: note(match.group(1), required=True), body)
    rest = _V_BOUNDS.sub(bounds, rest)
    rest = _V_ALLOWED.sub(allowed, rest)
    rest = _V_PATTERN.sub(pattern, rest)
    rest = _V_TYPE.sub(typed, rest)
    leftover = _V_BOILERPLATE.sub("", rest).strip()
    if leftover:
        raise SpecFormatError(f"{where}: cannot read {leftover.splitlines()[0]!r}")
    return facts


def parse_service(text: str, package: str) -> ServiceSpec:
    """The resource types and property structs of one ``<service>.generated.js``; strict, see above."""
    functions: dict[str, tuple[str, str | None]] = {}  # name -> (body, title of the struct it renders)
    previous_end = 0
    for match in _FUNCTION.finditer(text):
        renders = _RENDERS.search(text, previous_end, match.start())
        functions[match.group(1)] = (match.group(3), renders.group(1) if renders else None)
        previous_end = match.end()

    structs: dict[str, Struct] = {}
    for name, (body, title) in functions.items():
        if not name.endswith("ToRosTemplate"):
            continue
        where = f"{package}: {name}"
        if title is None:
            raise SpecFormatError(f"{where}: no 'Renders ... of a `TYPE` resource' comment")
        link = _MAPPER_LINK.search(body)
        returned = _MAPPER_RETURN.search(body)
        if link is None or returned is None or link.group(1) not in functions:
            raise SpecFormatError(f"{where}: no validator call or no returned object")
        facts = _parse_validator(functions[link.group(1)][0], f"{package}: {link.group(1)}")
        rules: dict[str, Rule] = {}
        mapped: set[str] = set()
        for line in returned.group(1).splitlines():
            entry = _MAPPER_ENTRY.fullmatch(line.strip())
            if entry is None:
                raise SpecFormatError(f"{where}: cannot read {line.strip()!r}")
            pascal, expression, camel = entry.groups()
            mapped.add(camel)
            shape = _shape(expression, _MAPPERS, where)
            known = dict(facts.get(camel, {}))
            validated = known.pop("validated", None)
            if validated is not None and not _same_kind(shape, validated):
                raise SpecFormatError(f"{where}: {pascal} maps as {shape.describe()} but validates as a {validated}")
            rules[pascal] = Rule(shape=shape, **known)
        if set(facts) - mapped:
            raise SpecFormatError(f"{where}: validated but never rendered: {sorted(set(facts) - mapped)}")
        structs[name] = Struct(title=title, rules=rules)

    type_names = dict(_TYPE_NAME.findall(text))
    resources: dict[str, ResourceType] = {}
    for class_name, body in _CLASS.findall(text):
        render = _RENDER_CALL.search(body)
        if class_name not in type_names or render is None or render.group(1) not in structs:
            raise SpecFormatError(f"{package}: class {class_name} has no type name or property mapper")
        type_name = type_names[class_name]
        resources[type_name] = ResourceType(
            name=type_name,
            properties=structs[render.group(1)],
            attributes=frozenset(_GET_ATT.findall(body)),
            package=package,
        )
    if not resources:
        raise SpecFormatError(f"{package}: no resource classes found")
    return ServiceSpec(resources=resources, structs=structs)


def package_for(resource_type: str) -> str:
    """The PyPI distribution carrying ``resource_type``: ``ALIYUN::FC3::Function`` -> ``ros-cdk-fc3``."""
    parts = resource_type.split("::")
    if len(parts) != 3 or parts[0] != "ALIYUN":
        raise SpecFormatError(f"{resource_type!r} is not an ALIYUN::<service>::<type> resource type")
    return f"ros-cdk-{parts[1].lower()}"


def generated_source(package: str) -> tuple[str, str]:
    """``(text of <service>.generated.js, "package==version")`` from the installed ``package``'s wheel."""
    try:
        distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError as error:
        raise SpecFormatError(f"{package} is not installed: pin it in requirements-dev.txt") from error
    archives = [path for path in distribution.files or () if path.name.endswith(".jsii.tgz")]
    if len(archives) != 1:
        raise SpecFormatError(f"{package}: expected one .jsii.tgz in the wheel, found {archives}")
    service = package.removeprefix("ros-cdk-")
    member = f"package/lib/{service}.generated.js"
    with tarfile.open(str(distribution.locate_file(archives[0])), "r:gz") as archive:
        try:
            extracted = archive.extractfile(member)
        except KeyError:
            extracted = None
        if extracted is None:
            raise SpecFormatError(f"{package}: {member} missing from {archives[0]}")
        return extracted.read().decode("utf-8"), f"{package}=={distribution.version}"


@functools.cache
def service_spec(package: str) -> ServiceSpec:
    """The parsed specification in the installed ``package``; parsed once per test session."""
    return parse_service(*generated_source(package))


def resource_type(name: str) -> ResourceType:
    """The specification of one resource type; ``SpecFormatError`` if its package does not define it."""
    spec = service_spec(package_for(name))
    if name not in spec.resources:
        raise SpecFormatError(f"{name} is not a resource type of {package_for(name)}")
    return spec.resources[name]


# --------------------------------------------------------------------------- checking values


@dataclass(frozen=True)
class Unresolved:
    """A value ROS only knows once resources exist (``Fn::GetAtt``, ``Ref`` to a resource)."""

    origin: str


def problems(kind: str, properties: Any, where: str) -> list[str]:
    """Every way ``properties`` (evaluated, see ``Evaluation``) breaks the specification of ``kind``."""
    return _struct_problems(service_spec(package_for(kind)), resource_type(kind).properties, properties, where)


def _struct_problems(spec: ServiceSpec, struct: Struct, value: Any, where: str) -> list[str]:
    if isinstance(value, Unresolved):
        return []
    if not isinstance(value, dict):
        return [f"{where}: {struct.title} must be an object, not {value!r}"]
    found: list[str] = []
    by_lower = {name.lower(): name for name in struct.rules}
    for key in value:
        if key not in struct.rules:
            hint = f" (did you mean {by_lower[key.lower()]!r}?)" if key.lower() in by_lower else ""
            found.append(f"{where}: {struct.title} has no property {key!r}{hint}")
    for name, rule in struct.rules.items():
        if name in value:
            found += _value_problems(spec, rule, rule.shape, value[name], f"{where}.{name}")
        elif rule.required:
            found.append(f"{where}: {struct.title} requires {name!r}")
    return found


def _value_problems(spec: ServiceSpec, rule: Rule, shape: Shape, value: Any, where: str) -> list[str]:
    if isinstance(value, Unresolved) or shape.kind == "any":
        return []
    if shape.kind == "struct":
        assert shape.struct is not None
        return _struct_problems(spec, spec.structs[shape.struct], value, where)
    if not _has_kind(value, shape.kind):
        return [f"{where}: must be a {shape.describe()}, not {value!r}"]
    found = _constraint_problems(rule, value, where)
    if shape.item is None:
        return found
    items: list[tuple[Any, Any]] = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    for key, item in items:
        found += _value_problems(spec, Rule(shape=shape.item), shape.item, item, f"{where}[{key!r}]")
    return found


def _has_kind(value: Any, kind: str) -> bool:
    # bool is an int in Python, but never a number in a template.
    return isinstance(value, _PYTHON_TYPES[kind]) and not (kind == "number" and isinstance(value, bool))


def _constraint_problems(rule: Rule, value: Any, where: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if rule.minimum is not None and value < rule.minimum:
            found.append(f"{where}: {value} is below the minimum {rule.minimum}")
        if rule.maximum is not None and value > rule.maximum:
            found.append(f"{where}: {value} is above the maximum {rule.maximum}")
    if isinstance(value, (str, list)):
        if rule.min_length is not None and len(value) < rule.min_length:
            found.append(f"{where}: length {len(value)} of {value!r} is below {rule.min_length}")
        if rule.max_length is not None and len(value) > rule.max_length:
            found.append(f"{where}: length {len(value)} of {value!r} is above {rule.max_length}")
    if isinstance(value, str) and rule.pattern is not None and not rule.pattern.search(value):
        found.append(f"{where}: {value!r} does not match /{rule.pattern.pattern}/")
    if rule.allowed is not None and value not in rule.allowed:
        found.append(f"{where}: {value!r} is not one of {list(rule.allowed)}")
    return found


# --------------------------------------------------------------------------- evaluating a template

PSEUDO_PARAMETERS = frozenset(
    {"ALIYUN::Region", "ALIYUN::AccountId", "ALIYUN::StackName", "ALIYUN::StackId", "ALIYUN::NoValue"}
)
_NO_VALUE = Unresolved("ALIYUN::NoValue")


class TemplateError(Exception):
    """The template uses something this evaluator cannot evaluate, or refers to what does not exist."""


@dataclass(frozen=True)
class Scenario:
    """One stack: the parameter values and the pseudo parameters ROS would supply."""

    parameters: Mapping[str, Any]
    region: str = "cn-hangzhou"
    account_id: str = "1234567890123456"
    stack_name: str = "esa-scheduler"


@dataclass
class Evaluation:
    """``template`` as ROS would see it for ``scenario``: conditions decided, functions applied."""

    template: Mapping[str, Any]
    scenario: Scenario
    conditions: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = set(self.template.get("Parameters", {})) - set(self.scenario.parameters)
        if missing:
            raise TemplateError(f"no value for parameters {sorted(missing)}")
        for name in self.template.get("Conditions", {}):
            self.condition(name)

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            definitions = self.template.get("Conditions", {})
            if name not in definitions:
                raise TemplateError(f"unknown condition {name!r}")
            self.conditions[name] = bool(self.value(definitions[name]))
        return self.conditions[name]

    def resources(self) -> dict[str, dict[str, Any]]:
        """``{name: evaluated properties}`` of every resource whose ``Condition`` holds."""
        return {
            name: self.value(body.get("Properties", {}))
            for name, body in self.template["Resources"].items()
            if "Condition" not in body or self.condition(body["Condition"])
        }

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self.value(entry) for entry in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not (set(node) == {"Ref"} or next(iter(node)).startswith("Fn::")):
            evaluated = {key: self.value(entry) for key, entry in node.items()}
            return {key: entry for key, entry in evaluated.items() if entry is not _NO_VALUE}
        ((function, argument),) = node.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::GetAtt":
            target, attribute = argument
            if target not in self.template["Resources"]:
                raise TemplateError(f"Fn::GetAtt on unknown resource {target!r}")
            return Unresolved(f"{target}.{attribute}")
        if function == "Fn::Join":
            separator, parts = argument
            values = self.value(parts)
            if any(isinstance(part, Unresolved) for part in values):
                return Unresolved(f"Fn::Join of {values}")
            return separator.join(str(part) for part in values)
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.value(when_true if self.condition(name) else when_false)
        if function == "Fn::Equals":
            left, right = (self.value(side) for side in argument)
            return left == right
        if function in {"Fn::Not", "Fn::And", "Fn::Or"}:
            operands = [self.condition(item) if isinstance(item, str) else self.value(item) for item in argument]
            if function == "Fn::Not":
                (operand,) = operands
                return not operand
            return all(operands) if function == "Fn::And" else any(operands)
        raise TemplateError(f"ros_spec cannot evaluate {function}; teach Evaluation.value")

    def _ref(self, name: str) -> Any:
        pseudo = {
            "ALIYUN::Region": self.scenario.region,
            "ALIYUN::AccountId": self.scenario.account_id,
            "ALIYUN::StackName": self.scenario.stack_name,
            "ALIYUN::StackId": Unresolved("ALIYUN::StackId"),
            "ALIYUN::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.scenario.parameters:
            value = self.scenario.parameters[name]
            declared = self.template.get("Parameters", {}).get(name, {})
            if declared.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                return [part.strip() for part in value.split(",")]
            return value
        if name in self.template["Resources"]:
            return Unresolved(f"Ref {name}")
        raise TemplateError(f"Ref to unknown {name!r}")


def references(node: Any) -> Iterator[tuple[str, Any]]:
    """Every ``(function, argument)`` of a ``Ref`` or ``Fn::*`` anywhere in ``node``, unevaluated."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" or key.startswith("Fn::"):
                yield key, value
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)
