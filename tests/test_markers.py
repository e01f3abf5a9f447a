from __future__ import annotations

from loopkit import hookimpl
from loopkit._dispatch.markers import EventFilter, event_filter


def test_hookimpl_returns_the_function_it_marks_bare_or_with_options() -> None:
    def on_epoch_end() -> None: ...

    def on_train_batch_end() -> None: ...

    assert hookimpl(on_epoch_end) is on_epoch_end
    assert hookimpl(tryfirst=True)(on_train_batch_end) is on_train_batch_end


def test_event_filter_is_what_every_or_once_put_on_the_function() -> None:
    @hookimpl
    def plain() -> None: ...

    @hookimpl(every=3)
    def periodic() -> None: ...

    @hookimpl(once=2)
    def single() -> None: ...

    assert event_filter(plain) is None
    assert event_filter(periodic) == EventFilter(every=3)
    assert event_filter(single) == EventFilter(once=2)
    assert [event_filter(periodic).fires(n) for n in (1, 3, 6)] == [False, True, True]
