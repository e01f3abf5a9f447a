"""Plugin registration, validation, ordering, event filters and plugin-declared hooks."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

from loopkit import Plugin, PluginError, Sequential, hookimpl, plugin_name
from loopkit._dispatch.dispatcher import HOOK_NAMES, HookDispatcher
from loopkit.hookspecs import hookspec
from loopkit.layers import Dense


@pytest.fixture
def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "x": rng.normal(size=(12, 3)).astype(np.float32),
        "y": rng.normal(size=(12, 2)).astype(np.float32),
    }


@pytest.fixture
def model() -> Sequential:
    model = Sequential([Dense(4, input_shape=(3,)), Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def fit(model: Sequential, data: dict, **kwargs: Any) -> Any:
    kwargs.setdefault("epochs", 2)
    return model.fit(data["x"], data["y"], batch_size=4, verbose=0, **kwargs)


class Tagged:
    """Appends its name to a shared log in on_epoch_end."""

    def __init__(self, name: str, log: list[str], **ordering: Any) -> None:
        self.name = name
        self.log = log
        for key, value in ordering.items():
            setattr(self, key, value)

    @hookimpl
    def on_epoch_end(self) -> None:
        self.log.append(self.name)


def run_order(plugins: list[Any]) -> list[str]:
    dispatcher = HookDispatcher(plugins)
    dispatcher.call("on_epoch_end", 1, model=None, state=None, epoch=0, logs={})
    return [plugin_name(p) for p in dispatcher.originals()]


# --- the marker -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "2"])
def test_hookimpl_rejects_a_filter_that_is_not_a_positive_int(value: Any) -> None:
    with pytest.raises(
        PluginError, match=rf"hookimpl\(every={value!r}\): expected a positive"
    ):
        hookimpl(every=value)


def test_hookimpl_rejects_every_and_once_together() -> None:
    with pytest.raises(PluginError, match=r"hookimpl\(every=2, once=3\): pass one of them"):
        hookimpl(every=2, once=3)


def test_a_filter_on_a_hook_without_event_count_is_rejected(
    model: Sequential, data
) -> None:
    class Filtered:
        @hookimpl(every=2)
        def on_train_begin(self) -> None:
            pass

    with pytest.raises(PluginError, match=r"'filtered': every=/once= on 'on_train_begin'"):
        fit(model, data, plugins=[Filtered()])


# --- validation at registration -------------------------------------------------------


def test_a_misspelled_marked_hook_fails_with_did_you_mean_and_the_valid_hooks(
    model: Sequential, data: dict
) -> None:
    class Typo:
        @hookimpl
        def on_epoch_ennd(self) -> None:
            pass

    with pytest.raises(PluginError, match=r"'typo' implements 'on_epoch_ennd'") as caught:
        fit(model, data, plugins=[Typo()])
    message = str(caught.value)
    assert "Did you mean 'on_epoch_end'?" in message
    assert f"Valid hooks: {list(HOOK_NAMES)}" in message
    assert model.state.global_step == 0


def test_a_misspelled_keras_style_method_fails_with_did_you_mean(model: Sequential) -> None:
    class KerasTypo:
        def on_epoch_ennd(self, epoch, logs=None):
            pass

    with pytest.raises(
        PluginError,
        match=r"'keras_typo' has a method 'on_epoch_ennd', which is not a loopkit hook\. "
        r"Did you mean 'on_epoch_end'\? Valid hooks: \['on_train_begin'",
    ):
        model.show_loop(plugins=[KerasTypo()])


def test_an_unknown_argument_fails_naming_the_hook_and_its_arguments(
    model: Sequential,
) -> None:
    class BadArgument:
        @hookimpl
        def on_epoch_end(self, epochh: int) -> None:
            pass

    with pytest.raises(
        PluginError,
        match=r"'bad_argument': on_epoch_end\(\) takes argument\(s\) \['epochh'\] that the "
        r"hook does not pass\. Did you mean 'epoch'\? It passes \['model', 'state', "
        r"'epoch', 'logs'\]",
    ):
        HookDispatcher([BadArgument()])


def test_an_unknown_argument_with_a_default_also_fails(model: Sequential) -> None:
    class Defaulted:
        @hookimpl
        def on_train_batch_end(self, batch: int, logz: Any = None) -> None:
            pass

    with pytest.raises(PluginError, match=r"takes argument\(s\) \['logz'\] .*'logs'\?"):
        HookDispatcher([Defaulted()])


def test_a_hook_argument_with_a_default_is_rejected(model: Sequential) -> None:
    class KerasHabit:
        @hookimpl
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            pass

    with pytest.raises(
        PluginError, match=r"gives 'logs' a default \(logs=None\).* Remove the default"
    ):
        HookDispatcher([KerasHabit()])


def test_a_keras_method_that_fits_neither_by_name_nor_by_position_fails() -> None:
    class TooMany:
        def on_epoch_end(self, epoch, logs, extra):
            pass

    with pytest.raises(
        PluginError,
        match=r"'too_many': on_epoch_end\(epoch, logs, extra\) does not fit hook "
        r"'on_epoch_end', which passes \['model', 'state', 'epoch', 'logs'\] by name",
    ):
        HookDispatcher([TooMany()])


def test_a_keras_method_with_other_parameter_names_is_called_by_position() -> None:
    seen: list[Any] = []

    class OwnNames:
        def on_epoch_end(self, e, log_dict=None):
            seen.append((e, log_dict))

    HookDispatcher([OwnNames()]).call(
        "on_epoch_end", 1, model=None, state=None, epoch=3, logs={"loss": 1.0}
    )
    assert seen == [(3, {"loss": 1.0})]


def test_an_unmarked_hook_method_beside_marked_ones_is_rejected() -> None:
    class Forgot:
        @hookimpl
        def on_train_begin(self) -> None:
            pass

        def on_train_end(self) -> None:
            pass

    with pytest.raises(
        PluginError, match=r"'forgot' marks some hooks .* but not 'on_train_end'.* Mark it"
    ):
        HookDispatcher([Forgot()])


def test_a_class_instead_of_an_instance_is_rejected() -> None:
    class Recorder:
        @hookimpl
        def on_train_begin(self) -> None:
            pass

    with pytest.raises(PluginError, match=r"Got the class Recorder, not an instance; pass"):
        HookDispatcher([Recorder])


def test_an_object_with_no_hook_is_rejected() -> None:
    with pytest.raises(PluginError, match=r"implements no loopkit hook: mark methods"):
        HookDispatcher([object()])


def test_the_same_plugin_twice_in_one_run_is_rejected(model: Sequential, data) -> None:
    log: list[str] = []
    plugin = Tagged("once", log)
    model.plugins.register(plugin)
    with pytest.raises(
        PluginError, match=r"'once' is in this run twice .* pass each plugin"
    ):
        fit(model, data, plugins=[plugin])


def test_a_module_with_marked_functions_is_a_plugin() -> None:
    seen: list[int] = []
    module = types.ModuleType("epoch_logger")

    @hookimpl
    def on_epoch_end(epoch: int) -> None:
        seen.append(epoch)

    module.on_epoch_end = on_epoch_end  # type: ignore[attr-defined]
    dispatcher = HookDispatcher([module])
    dispatcher.call("on_epoch_end", 1, model=None, state=None, epoch=4, logs={})
    assert seen == [4]
    assert plugin_name(module) == "epoch_logger"


# --- names and the Plugin base class --------------------------------------------------


def test_plugin_names_come_from_name_or_the_snake_cased_class() -> None:
    class CSVLogger:
        pass

    class EarlyStopping:
        name = "stopper"

    class ReduceLROnPlateau:
        pass

    assert plugin_name(CSVLogger()) == "csv_logger"
    assert plugin_name(EarlyStopping()) == "stopper"
    assert plugin_name(ReduceLROnPlateau()) == "reduce_lr_on_plateau"


def test_the_plugin_base_class_reads_a_lone_name_as_one_name() -> None:
    plugin = Plugin(before="history", after=["a", "b"])
    assert plugin.before == ("history",)
    assert plugin.after == ("a", "b")
    assert plugin.order == 0
    assert plugin.state_dict() == {}


# --- ordering -------------------------------------------------------------------------


def test_plugins_run_by_order_with_ties_kept_in_the_order_given() -> None:
    log: list[str] = []
    plugins = [
        Tagged("late", log, order=5),
        Tagged("first_tie", log),
        Tagged("early", log, order=-1),
        Tagged("second_tie", log),
    ]
    assert run_order(plugins) == ["early", "first_tie", "second_tie", "late"]
    assert log == ["early", "first_tie", "second_tie", "late"]


def test_before_and_after_override_order() -> None:
    log: list[str] = []
    plugins = [
        Tagged("a", log, after=["c"]),
        Tagged("b", log, order=-10, after="a"),  # a lone string is one name
        Tagged("c", log, order=10),
        Tagged("d", log, before=("c",), order=20),
    ]
    assert run_order(plugins) == ["d", "c", "a", "b"]


def test_ordering_against_a_plugin_not_in_the_run_is_ignored() -> None:
    log: list[str] = []
    assert run_order([Tagged("a", log, after=["absent"]), Tagged("b", log)]) == ["a", "b"]


def test_a_cycle_of_constraints_fails_naming_the_plugins_in_it() -> None:
    log: list[str] = []
    plugins = [
        Tagged("a", log, before=["b"]),
        Tagged("b", log, before=["c"]),
        Tagged("c", log, before=["a"]),
        Tagged("bystander", log, after=["a"]),
    ]
    with pytest.raises(PluginError, match=r"form a cycle: .*Remove one") as caught:
        HookDispatcher(plugins)
    chain = str(caught.value).split("cycle: ")[1].split(" (each")[0]
    assert chain in (
        "'a' -> 'b' -> 'c' -> 'a'",
        "'b' -> 'c' -> 'a' -> 'b'",
        "'c' -> 'a' -> 'b' -> 'c'",
    )
    assert "bystander" not in str(caught.value)


def test_an_order_that_is_not_a_number_is_rejected() -> None:
    with pytest.raises(PluginError, match=r"'x' has order='high'; expected a number"):
        HookDispatcher([Tagged("x", [], order="high")])


def test_monitors_see_validation_and_learning_rate_whatever_their_order(
    model: Sequential, data: dict
) -> None:
    seen: dict[str, set[str]] = {}

    class Monitor:
        def __init__(self, name: str, order: int) -> None:
            self.name, self.order = name, order

        @hookimpl
        def on_epoch_end(self, logs: dict) -> None:
            seen[self.name] = set(logs)

    fit(
        model,
        data,
        plugins=[Monitor("last", 10_000), Monitor("first", -10_000)],
        validation_split=0.25,
        epochs=1,
    )
    assert seen["first"] == seen["last"] == {"loss", "val_loss", "learning_rate"}


def test_tryfirst_and_trylast_take_precedence_over_the_order_given() -> None:
    log: list[str] = []

    class Last(Tagged):
        @hookimpl(trylast=True)
        def on_epoch_end(self) -> None:
            self.log.append(self.name)

    class First(Tagged):
        @hookimpl(tryfirst=True)
        def on_epoch_end(self) -> None:
            self.log.append(self.name)

    run_order([Last("last", log), Tagged("middle", log), First("first", log)])
    assert log == ["first", "middle", "last"]


def test_a_wrapper_runs_around_the_other_implementations() -> None:
    log: list[str] = []

    class Around:
        @hookimpl(wrapper=True)
        def on_epoch_end(self, epoch: int) -> Any:
            log.append(f"enter {epoch}")
            result = yield
            log.append(f"exit {epoch}")
            return result

    run_order([Tagged("inner", log), Around()])
    assert log == ["enter 0", "inner", "exit 0"]


def test_show_loop_prints_each_hooks_plugins_in_call_order(
    model: Sequential, capsys: pytest.CaptureFixture[str]
) -> None:
    class Sparse:
        @hookimpl(every=10)
        def on_train_batch_end(self) -> None:
            pass

    class Around:
        @hookimpl(wrapper=True)
        def on_epoch_end(self) -> Any:
            return (yield)

    log: list[str] = []
    text = model.show_loop(
        plugins=[Tagged("b", log, order=1), Tagged("a", log), Sparse(), Around()]
    )
    assert capsys.readouterr().out == text + "\n"
    lines = dict(line.split(": ", 1) for line in text.splitlines())
    assert list(lines) == list(HOOK_NAMES)
    assert lines["on_epoch_end"] == "around[wrapper], a, b, history"
    assert lines["on_train_batch_end"] == "sparse[every=10]"
    assert lines["on_train_begin"] == "history"
    assert lines["on_exception"] == "-"


# --- event filters --------------------------------------------------------------------


def test_every_fires_on_every_nth_training_batch_of_the_model(
    model: Sequential, data: dict
) -> None:
    steps: list[int] = []

    class EveryOther:
        @hookimpl(every=2)
        def on_train_batch_end(self, state: Any) -> None:
            steps.append(state.global_step)

    fit(model, data, plugins=[EveryOther()])  # 2 epochs of 3 batches: steps 1..6
    assert steps == [2, 4, 6]


def test_once_fires_on_one_epoch_only_and_others_still_run_every_time(
    model: Sequential, data: dict
) -> None:
    once: list[int] = []
    every: list[int] = []

    class Once:
        @hookimpl(once=3)
        def on_epoch_end(self, epoch: int) -> None:
            once.append(epoch)

    class Always:
        @hookimpl
        def on_epoch_end(self, epoch: int) -> None:
            every.append(epoch)

    fit(model, data, plugins=[Once(), Always()], epochs=4)
    assert once == [2]  # the third epoch
    assert every == [0, 1, 2, 3]


def test_filters_on_test_batches_count_batches_within_the_run(
    model: Sequential, data: dict
) -> None:
    batches: list[int] = []

    class EverySecond:
        @hookimpl(every=2)
        def on_test_batch_end(self, batch: int) -> None:
            batches.append(batch)

    model.evaluate(data["x"], data["y"], batch_size=2, verbose=0, plugins=[EverySecond()])
    assert batches == [1, 3, 5]


def test_filtered_optimizer_step_hooks_skip_exactly_the_other_steps(
    model: Sequential, data: dict
) -> None:
    applied: list[bool] = []

    class SkipEveryThird:
        @hookimpl(every=3)
        def on_before_optimizer_step(self, step: Any) -> None:
            step.skip = True

    class Watch:
        @hookimpl
        def on_after_optimizer_step(self, step: Any) -> None:
            applied.append(not step.skip)

    fit(model, data, plugins=[SkipEveryThird(), Watch()])
    assert applied == [True, True, False, True, True, False]


# --- model.plugins --------------------------------------------------------------------


def test_registered_plugins_run_in_every_fit_until_unregistered(
    model: Sequential, data: dict
) -> None:
    log: list[str] = []
    kept = model.plugins.register(Tagged("kept", log))
    fit(model, data, epochs=1)
    fit(model, data, epochs=2)
    assert log == ["kept"] * 3
    assert len(model.plugins) == 1 and list(model.plugins) == [kept]
    model.plugins.unregister(kept)
    fit(model, data, epochs=1)
    assert log == ["kept"] * 3


def test_registering_a_plugin_twice_or_a_class_fails(model: Sequential) -> None:
    plugin = model.plugins.register(Tagged("p", []))
    with pytest.raises(PluginError, match=r"Plugin 'p' is already registered"):
        model.plugins.register(plugin)
    with pytest.raises(PluginError, match=r"Got the class Tagged, not an instance"):
        model.plugins.register(Tagged)


def test_registering_a_disabled_name_registers_nothing(
    model: Sequential, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPKIT_DISABLE_PLUGINS", "not_installed_anywhere")
    assert model.plugins.register("not_installed_anywhere") is None
    assert len(model.plugins) == 0


# --- hooks declared by plugins --------------------------------------------------------


class SampleSpecs:
    @hookspec
    def on_samples(self, model: Any, state: Any, images: Any) -> None:
        """Called by SampleImages after each epoch with a batch of generated images."""

    @hookspec(firstresult=True)
    def on_pick_sample(self, images: Any) -> Any:
        """Return the index of the image to keep; stops at the first non-None result."""


class SampleImages:
    hookspecs = SampleSpecs

    def __init__(self) -> None:
        self.results: list[Any] = []

    @hookimpl
    def on_epoch_end(self, model: Sequential, state: Any) -> None:
        images = np.full((2, 2), state.epoch, np.float32)
        listed = state.hooks.call("on_samples", model=model, state=state, images=images)
        first = state.hooks.call("on_pick_sample", images=images)
        self.results.append((listed, first))


class SampleCounter:
    def __init__(self, answer: int | None) -> None:
        self.seen: list[float] = []
        self.answer = answer

    @hookimpl
    def on_samples(self, images: np.ndarray) -> int:
        self.seen.append(float(images[0, 0]))
        return len(images)

    @hookimpl
    def on_pick_sample(self) -> int | None:
        return self.answer


def test_a_plugin_declares_a_hook_that_other_plugins_implement(
    model: Sequential, data: dict
) -> None:
    declarer, none, one = SampleImages(), SampleCounter(None), SampleCounter(1)
    fit(model, data, plugins=[declarer, none, one])
    assert none.seen == one.seen == [0.0, 1.0]
    assert declarer.results == [([2, 2], 1), ([2, 2], 1)]


def test_a_declared_hook_without_implementations_returns_an_empty_result() -> None:
    dispatcher = HookDispatcher([SampleImages()])
    assert dispatcher.hook_names[-2:] == ("on_pick_sample", "on_samples")
    assert dispatcher.call("on_samples", model=None, state=None, images=None) == []
    assert dispatcher.call("on_pick_sample", images=None) is None


def test_show_loop_lists_declared_hooks_after_loopkits(model: Sequential) -> None:
    text = model.show_loop(plugins=[SampleImages(), SampleCounter(None)])
    assert text.splitlines()[-2:] == [
        "on_pick_sample: sample_counter",
        "on_samples: sample_counter",
    ]


def test_implementing_a_declared_hook_with_a_wrong_argument_fails() -> None:
    class Wrong:
        @hookimpl
        def on_samples(self, image: Any) -> None:
            pass

    with pytest.raises(
        PluginError,
        match=r"on_samples\(\) takes argument\(s\) \['image'\] .*Did you mean "
        r"'images'\? It passes \['model', 'state', 'images'\]",
    ):
        HookDispatcher([SampleImages(), Wrong()])


def test_a_declared_hook_implemented_without_its_declarer_is_unknown() -> None:
    with pytest.raises(
        PluginError, match=r"implements 'on_(pick_sample|samples)', .*add that plugin to"
    ):
        HookDispatcher([SampleCounter(None)])


def test_calling_a_hook_the_run_does_not_have_names_the_hooks_it_has() -> None:
    dispatcher = HookDispatcher([SampleImages()])
    with pytest.raises(
        PluginError, match=r"hooks.call\('on_sampels'\): .*Did you mean 'on_samples'\?"
    ):
        dispatcher.call("on_sampels", images=None)


def test_a_declared_hook_may_not_take_a_loopkit_hooks_name() -> None:
    class Clash:
        @hookspec
        def on_epoch_end(self, model: Any) -> None:
            """Clashes with loopkit's own hook."""

    class Declarer(SampleImages):
        hookspecs = Clash

    with pytest.raises(
        PluginError, match=r"declares hook 'on_epoch_end', which loopkit already defines"
    ):
        HookDispatcher([Declarer()])


def test_two_plugins_may_not_declare_the_same_hook_name() -> None:
    class OtherSpecs:
        @hookspec
        def on_samples(self, images: Any) -> None:
            """Declared a second time."""

    class Other(SampleImages):
        hookspecs = OtherSpecs

    with pytest.raises(
        PluginError, match=r"'on_samples', which another plugin of this run"
    ):
        HookDispatcher([SampleImages(), Other()])


def test_two_instances_sharing_one_hookspecs_class_declare_it_once() -> None:
    dispatcher = HookDispatcher([SampleImages(), SampleImages()])
    assert dispatcher.hook_names.count("on_samples") == 1


def test_hookspecs_must_be_a_class_or_module_of_marked_functions() -> None:
    class InstanceSpecs(SampleImages):
        hookspecs = SampleSpecs()

    class EmptySpecs(SampleImages):
        hookspecs = object

    with pytest.raises(PluginError, match=r"expected a class or module .*not an instance"):
        HookDispatcher([InstanceSpecs()])
    with pytest.raises(PluginError, match=r"holds no function marked @loopkit.hookspec"):
        HookDispatcher([EmptySpecs()])


# --- the direct call path (no wrapper) against pluggy's own -------------------------


class Recorder:
    """Records its calls and returns a value, with optional pluggy call-order marks."""

    def __init__(self, name: str, log: list[str], result: Any = None, **marks: Any) -> None:
        self.name = name
        self.log = log
        self.result = result

        def on_samples(images: Any) -> Any:  # a function per instance: marks differ
            self.log.append(f"{self.name}:{images}")
            return self.result

        self.on_samples = hookimpl(**marks)(on_samples)


def test_the_direct_call_path_matches_pluggys_call_order_and_results() -> None:
    def plugins(log: list[str]) -> list[Any]:
        return [
            SampleImages(),
            Recorder("late", log, "L", trylast=True),
            Recorder("plain", log, None),
            Recorder("early", log, "E", tryfirst=True),
            Recorder("second", log, 2),
        ]

    direct_log: list[str] = []
    direct = HookDispatcher(plugins(direct_log))
    assert direct.hooks["on_samples"]._direct is not None  # the fast path is taken
    got = direct.call("on_samples", model=None, state=None, images=7)
    pluggy_log: list[str] = []
    reference = HookDispatcher(plugins(pluggy_log))
    expected = reference.manager.hook.on_samples(model=None, state=None, images=7)
    assert got == expected == ["E", 2, "L"]
    assert direct_log == pluggy_log == ["early:7", "plain:7", "second:7", "late:7"]


def test_the_direct_call_path_stops_a_firstresult_hook_at_the_first_answer() -> None:
    declarer, none, one, two = (
        SampleImages(),
        SampleCounter(None),
        SampleCounter(1),
        SampleCounter(2),
    )
    dispatcher = HookDispatcher([declarer, none, one, two])
    assert dispatcher.call("on_pick_sample", images=None) == 1


def test_a_hook_call_missing_an_argument_an_implementation_takes_fails_clearly() -> None:
    dispatcher = HookDispatcher([SampleImages(), SampleCounter(None)])
    with pytest.raises(PluginError, match=r"got no 'images'.*pass every argument"):
        dispatcher.call("on_samples", model=None, state=None)


def test_a_wrapper_makes_the_hook_go_through_pluggy_with_the_same_order() -> None:
    log: list[str] = []

    class Around:
        @hookimpl(wrapper=True)
        def on_samples(self, images: Any) -> Any:
            log.append("enter")
            result = yield
            log.append("exit")
            return [*result, "wrapped"]

    dispatcher = HookDispatcher(
        [SampleImages(), Recorder("a", log, 1), Around(), Recorder("b", log, 2)]
    )
    assert dispatcher.hooks["on_samples"]._direct is None
    got = dispatcher.call("on_samples", model=None, state=None, images=0)
    assert got == [1, 2, "wrapped"]
    assert log == ["enter", "a:0", "b:0", "exit"]


# --- pluggy's errors, from data ------------------------------------------------------


def test_a_wrapper_that_is_no_generator_fails_naming_the_fix() -> None:
    class NotAGenerator:
        @hookimpl(wrapper=True)
        def on_epoch_end(self) -> None:
            pass

    with pytest.raises(
        PluginError,
        match=r"^Plugin 'not_a_generator': on_epoch_end\(\) is marked "
        r"@hookimpl\(wrapper=True\) but is no generator; .* Add the yield",
    ):
        HookDispatcher([NotAGenerator()])


def test_an_optional_hook_nobody_declares_is_accepted() -> None:
    class Optional:
        @hookimpl(optionalhook=True)
        def on_samples(self) -> None:
            pass

    assert HookDispatcher([Optional()]).hook_names == HOOK_NAMES


# --- Keras callbacks: model and params, by hand ----------------------------------------


def test_a_keras_callback_without_set_model_gets_self_model(
    model: Sequential, data
) -> None:
    class StopAt2:  # Keras's everyday callback, without the base class
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                self.model.stop_training = True

    stopper = StopAt2()
    history = fit(model, data, epochs=5, callbacks=[stopper])
    assert history.epoch == [0, 1]
    assert stopper.model is model  # type: ignore[attr-defined]
    assert stopper.params == {"verbose": 0, "epochs": 5, "steps": 3}  # type: ignore[attr-defined]


def test_a_callback_that_refuses_the_model_attribute_fails_naming_the_fix(
    model: Sequential, data
) -> None:
    class Slotted:
        __slots__ = ()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            pass

    with pytest.raises(
        PluginError, match=r"'slotted' has no set_model\(\) and refuses the attribute"
    ):
        fit(model, data, callbacks=[Slotted()])


def test_a_plugin_hook_method_takes_keras_arguments_by_hand(model: Sequential) -> None:
    class Seen(Plugin):
        @hookimpl
        def on_epoch_end(
            self, model: Sequential, state: Any, epoch: int, logs: Any
        ) -> None:
            self.seen = (model, state, epoch, dict(logs))

    seen = Seen()
    with pytest.raises(
        PluginError, match=r"Seen.on_epoch_end\(\) was called by hand before"
    ):
        seen.on_epoch_end(3, {"loss": 1.0})
    seen.set_model(model)
    seen.on_epoch_end(3, {"loss": 1.0})
    assert seen.seen == (model, model.state, 3, {"loss": 1.0})
    seen.on_epoch_end(epoch=4)
    assert seen.seen == (model, model.state, 4, {})
    seen.on_epoch_end(model=None, state=None, epoch=5, logs={})  # the spec's way
    assert seen.seen == (None, None, 5, {})
    with pytest.raises(TypeError, match=r"got 3 positional arguments; .* Keras's"):
        seen.on_epoch_end(1, {}, 2)
    with pytest.raises(TypeError, match=r"unexpected or repeated argument 'epochs'"):
        seen.on_epoch_end(epochs=1)


def test_pluggy_calls_the_implementation_not_the_by_hand_method(
    model: Sequential, data
) -> None:
    class Counted(Plugin):
        calls = 0

        @hookimpl
        def on_train_batch_end(self, batch: int) -> None:
            type(self).calls += 1

    counted = Counted()
    hooks = HookDispatcher([counted])
    (impl,) = hooks.manager.hook.on_train_batch_end.get_hookimpls()
    assert impl.function.__func__ is Counted.on_train_batch_end.__wrapped__
    fit(model, data, epochs=1, plugins=[counted])
    assert Counted.calls == 3
