from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from attrs import frozen

from loopkit import ConfigError
from loopkit._registry import Registry, from_class_config, to_config


@frozen
class Greeting:
    def get_config(self) -> dict[str, Any]:
        return attrs.asdict(self)


@frozen
class Hello(Greeting):
    word: str = "hi"


@frozen
class Wave(Greeting):
    times: int = 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Wave:
        return cls(times=int(config.get("times", 1)))  # cls(**config) would keep "3"


def loud() -> Hello:
    return Hello(word="HI")


def make_registry(config_names: bool = True) -> Registry[Greeting]:
    return Registry(
        kind="greeting",
        module="greetings",
        base=Greeting,
        names={"hello": Hello, "wave": Wave, "loud": loud},
        classes=(Hello, Wave),
        instead="a Greeting such as Hello()",
        accepts="None, a name such as 'hello', a Greeting, or a config dict",
        aliases={"hi": Hello},
        config_names=config_names,
    )


REGISTRY = make_registry()  # frozen: safe to share between tests


def test_get_makes_the_object_of_a_name_an_alias_or_a_class_name() -> None:
    assert REGISTRY.get("hello") == Hello()
    assert REGISTRY.get("hi") == Hello()
    assert REGISTRY.get("Wave") == Wave()
    assert REGISTRY.get("loud") == Hello(word="HI")


def test_get_passes_none_and_instances_through() -> None:
    greeting = Hello(word="yo")
    assert REGISTRY.get(greeting) is greeting
    assert REGISTRY.get(None) is None


def test_get_rejects_an_unknown_name_listing_names_and_a_suggestion() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^greetings\.get\('helo'\): unknown greeting 'helo'; expected one of "
        r"\['hello', 'loud', 'wave'\]\. Pass one of those names or a Greeting such as "
        r"Hello\(\)\. Did you mean 'hello'\?$",
    ):
        REGISTRY.get("helo")


def test_lookup_names_the_users_call_in_its_message() -> None:
    assert REGISTRY.lookup("wave", "greet()") is Wave
    with pytest.raises(ConfigError, match=r"^greet\(\): unknown greeting 'x'"):
        REGISTRY.lookup("x", "greet()")


def test_get_rejects_a_wrong_kind_with_type_error() -> None:
    with pytest.raises(
        TypeError,
        match=r"^greetings\.get\(\) got 3 of type int; expected None, a name such as "
        r"'hello', a Greeting, or a config dict\.$",
    ):
        REGISTRY.get(3)
    with pytest.raises(TypeError, match=r"got \{'config': \{\}\} of type dict"):
        REGISTRY.get({"config": {}})  # a dict without class_name is no config


def test_get_builds_a_config_dict_by_class_name_or_name() -> None:
    assert REGISTRY.get({"class_name": "Hello", "config": {"word": "yo"}}) == Hello("yo")
    assert REGISTRY.get({"class_name": "hello"}) == Hello()
    assert REGISTRY.get({"class_name": "Hello", "config": None}) == Hello()


def test_get_builds_with_from_config_where_the_class_defines_it() -> None:
    assert REGISTRY.get({"class_name": "Wave", "config": {"times": "3"}}) == Wave(3)


def test_get_rejects_an_unknown_config_key_and_suggests_one() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^greetings\.get\(\{'class_name': 'Wave', 'config': \{'time': 2\}\}\): "
        r"Wave takes no argument 'time'; it takes \['times'\]\. "
        r"Fix the config\. Did you mean 'times'\?$",
    ):
        REGISTRY.get({"class_name": "Wave", "config": {"time": 2}})


def test_get_rejects_an_unknown_class_name_in_a_config_as_an_unknown_name() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown greeting 'Helo'; .*Did you mean 'hello'\?$"
    ):
        REGISTRY.get({"class_name": "Helo", "config": {}})


def test_without_config_names_a_config_must_name_a_class() -> None:
    strict = make_registry(config_names=False)
    assert strict.get({"class_name": "Hello", "config": {}}) == Hello()
    with pytest.raises(
        ConfigError,
        match=r"^greetings\.get\(\{'class_name': 'loud'\}\): unknown class_name 'loud'; "
        r"expected one of \['Hello', 'Wave'\]\. Fix the config\.$",
    ):
        strict.get({"class_name": "loud"})
    with pytest.raises(ConfigError, match=r"class_name 'Wav'; .*Did you mean 'Wave'\?$"):
        strict.get({"class_name": "Wav"})


def test_serialize_gives_the_bare_name_for_defaults_and_a_dict_otherwise() -> None:
    assert REGISTRY.serialize(Hello()) == "hello"
    assert REGISTRY.serialize(Hello(word="HI")) == "loud"  # made by a function
    assert REGISTRY.serialize(None) is None
    assert REGISTRY.serialize(Wave(times=2)) == {
        "class_name": "Wave",
        "config": {"times": 2},
    }


@pytest.mark.parametrize(
    "greeting", [Hello(), Hello(word="HI"), Hello(word="yo"), Wave(), Wave(times=4)]
)
def test_serialize_round_trips_through_json_and_get(greeting: Greeting) -> None:
    data = json.loads(json.dumps(REGISTRY.serialize(greeting)))
    assert REGISTRY.get(data) == greeting


def test_serialize_rejects_what_is_not_of_the_kind() -> None:
    with pytest.raises(
        TypeError,
        match=r"^greetings\.serialize\(\) got 'hello' of type str; expected a Greeting "
        r"such as Hello\(\)\. To save a custom greeting, subclass Greeting and give it "
        r"a get_config\(\)\.$",
    ):
        REGISTRY.serialize("hello")  # type: ignore[arg-type]


def test_to_config_gives_the_class_name_and_get_config() -> None:
    assert to_config(Hello(word="yo")) == {"class_name": "Hello", "config": {"word": "yo"}}


def test_from_class_config_builds_the_class_a_dict_names() -> None:
    classes = {"Hello": Hello, "hey": Hello}
    assert from_class_config("f()", {"class_name": "Hello"}, classes) == Hello()
    assert from_class_config("f()", to_config(Hello("yo")), classes) == Hello("yo")
    assert from_class_config("f()", {"class_name": "hey"}, classes) == Hello()


def test_from_class_config_rejects_an_unknown_class_listing_the_classes() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^f\(\) got class_name='Helo'; expected one of \['Hello', 'Wave'\]\. "
        r"Did you mean 'Hello'\? Pass a dict made by serialize\(\)\.$",
    ):
        from_class_config("f()", {"class_name": "Helo"}, {"Hello": Hello, "Wave": Wave})
    with pytest.raises(ConfigError, match=r"^f\(\) got class_name=None; expected"):
        from_class_config("f()", {"config": {}}, {"Hello": Hello})


def test_from_class_config_rejects_every_unknown_key_at_once() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^f\(\) got config keys \['wird', 'x'\] for Hello, which takes "
        r"\['word'\]\. Remove or rename them\.$",
    ):
        from_class_config(
            "f()", {"class_name": "Hello", "config": {"x": 1, "wird": 2}}, {"Hello": Hello}
        )
