from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from attrs import define, frozen

from loopkit import ConfigError, Sequential
from loopkit._registry import Registry, to_config


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


def test_get_instantiates_a_class_of_the_kind_with_its_defaults() -> None:
    assert REGISTRY.get(Wave) == Wave()
    with pytest.raises(TypeError, match=r"^greetings\.get\(\) got <class 'int'> of type"):
        REGISTRY.get(int)


def test_ignore_case_finds_names_in_any_case_and_suggests_in_lower_case() -> None:
    loose = attrs.evolve(REGISTRY, ignore_case=True)
    assert loose.get("HELLO") == Hello()
    with pytest.raises(
        ConfigError, match=r"unknown greeting 'HELO'; .*Did you mean 'hello'"
    ):
        loose.get("HELO")


def test_without_write_names_serialize_always_writes_the_config() -> None:
    configs = attrs.evolve(REGISTRY, write_names=False)
    assert configs.serialize(Hello()) == {"class_name": "Hello", "config": {"word": "hi"}}


def test_deserialize_takes_names_configs_and_custom_objects_first() -> None:
    @frozen
    class Hello2(Greeting):
        word: str = "custom"

    assert REGISTRY.deserialize("wave") == Wave()
    assert REGISTRY.deserialize({"class_name": "Wave", "config": {"times": 2}}) == Wave(2)
    custom = {"Hello": Hello2}
    assert REGISTRY.deserialize({"class_name": "Hello"}, custom) == Hello2()
    assert REGISTRY.deserialize("Hello", custom) == Hello2()


def test_deserialize_rejects_unknown_names_and_other_kinds_in_the_one_shape() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^greetings\.deserialize\('wav'\): unknown greeting 'wav'; expected one "
        r"of \['hello', 'loud', 'wave'\]\. Pass one of those names or a Greeting such "
        r"as Hello\(\)\. Did you mean 'wave'\?$",
    ):
        REGISTRY.deserialize("wav")
    with pytest.raises(TypeError, match=r"^greetings\.deserialize\(\) got 3 of type int"):
        REGISTRY.deserialize(3)


def test_unknown_lists_the_given_names_and_suggests_among_them() -> None:
    error = REGISTRY.unknown("acuracy", "f()", ["accuracy", "hello"])
    assert str(error) == (
        "f(): unknown greeting 'acuracy'; expected one of ['accuracy', 'hello']. Pass "
        "one of those names or a Greeting such as Hello(). Did you mean 'accuracy'?"
    )


def test_a_registry_without_names_lists_its_class_names() -> None:
    by_class = attrs.evolve(REGISTRY, names={}, aliases={})
    assert by_class.get("Wave") == Wave()
    with pytest.raises(ConfigError, match=r"expected one of \['Hello', 'Wave'\]"):
        by_class.get("Wav")


# --- the seven kinds share the registry and its message ---------------------------------


@pytest.mark.parametrize(
    ("get", "name", "kind", "close"),
    [
        ("activations", "rleu", "activation", "relu"),
        ("initializers", "zeroes", "initializer", "zeros"),
        ("regularizers", "l1l2", "regularizer", "l1_l2"),
        ("losses", "msee", "loss", "mse"),
        ("metrics", "recal", "metric", "recall"),
        ("optimizers", "adamm", "optimizer", "adam"),
        ("layers", "Flaten", "layer", "Flatten"),
    ],
)
def test_every_kind_rejects_an_unknown_name_in_one_shape(
    get: str, name: str, kind: str, close: str
) -> None:
    module = importlib.import_module(f"loopkit.{get}")
    with pytest.raises(
        ConfigError,
        match=rf"^{get}\.\w+\('{name}'\): unknown {kind} '{name}'; expected one of "
        rf"\[.*'{close}'.*\]\. Pass one of those names or .*\. Did you mean '{close}'\?$",
    ):
        module.get(name)


def test_layers_serialize_and_deserialize_round_trip_through_json() -> None:
    from loopkit import layers
    from loopkit.saving.model_files import model_config

    dense = layers.Dense(3, activation="relu", kernel_regularizer="l2", input_shape=(4,))
    config = layers.serialize(dense)
    assert config["class_name"] == "Dense" and config["config"]["units"] == 3
    rebuilt = layers.deserialize(config)
    assert isinstance(rebuilt, layers.Dense) and rebuilt.get_config() == dense.get_config()
    written = model_config(Sequential([dense]))["layers"][0]  # as model.save writes it
    from_json = layers.deserialize(json.loads(json.dumps(written)))
    assert from_json.get_config() == dense.get_config()
    assert layers.get("Flatten").get_config() == layers.Flatten().get_config()
    assert layers.get(dense) is dense and layers.get(None) is None


def test_layers_deserialize_takes_custom_classes_and_rejects_other_kinds() -> None:
    from loopkit import layers

    @define(eq=False, slots=False)
    class Double(layers.Layer):
        factor: float = 2.0

    built = layers.deserialize(
        {"class_name": "Double", "config": {"factor": 3.0}}, {"Double": Double}
    )
    assert isinstance(built, Double) and built.factor == 3.0
    with pytest.raises(ConfigError, match=r"unknown layer 'Double'; .*custom_objects="):
        layers.deserialize({"class_name": "Double", "config": {}})
    with pytest.raises(TypeError, match=r"^layers\.deserialize\(\) got 3 of type int"):
        layers.deserialize(3)
    with pytest.raises(TypeError, match=r"^layers\.serialize\(\) got 'Dense' of type str"):
        layers.serialize("Dense")  # type: ignore[arg-type]
