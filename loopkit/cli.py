"""The ``loopkit`` console command: ``demo``, ``plugins`` and ``show-loop``."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from loopkit._dispatch.entry_points import disabled_names, installed_plugins
from loopkit.errors import LoopkitError

__all__ = ["main", "plain_text"]

# ``x``, `x` and :role:`~pkg.x` (Sphinx roles) as they read in a terminal.
_ROLE = re.compile(r":[\w:.-]+:`~?([^`]*)`")
_LITERAL = re.compile(r"``([^`]*)``|`([^`]*)`")


def plain_text(doc: str) -> str:
    """Return a docstring's summary (its first paragraph) on one line, without reST markup.

    ``:class:`~loopkit.plugins.EarlyStopping``` becomes ``EarlyStopping``,
    ``:func:`fit``` becomes ``fit`` and ````monitor```` becomes ``monitor``.
    """
    summary = " ".join(doc.strip().split("\n\n", 1)[0].split())

    def role(match: re.Match[str]) -> str:
        target = match.group(1)
        return target.rsplit(".", 1)[-1] if match.group(0).count("~") else target

    summary = _ROLE.sub(role, summary)
    return _LITERAL.sub(lambda m: m.group(1) or m.group(2) or "", summary)


def _static_doc(module_name: str, attribute: str) -> str | None:
    """Return the docstring of a module, or of a class or function defined in it.

    Read from the source without importing, so listing is fast (a plugin's heavy
    dependencies are not imported) and runs no plugin code. None when the attribute
    is something else (an instance, say), which only an import can describe.

    Raises:
        ModuleNotFoundError: the module is not installed.
    """
    spec = importlib.util.find_spec(module_name)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {module_name!r}")
    if spec.origin is None or not spec.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    if not attribute:
        return ast.get_docstring(tree) or ""
    definitions = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    found = [n for n in tree.body if isinstance(n, definitions) and n.name == attribute]
    return (ast.get_docstring(found[-1]) or "") if found else None


def _describe(value: str) -> str:
    """Return the one-line summary of the object an entry point names."""
    module_name, _, attribute = (part.strip() for part in value.partition(":"))
    try:
        doc = _static_doc(module_name, attribute)
        if doc is None:
            obj = importlib.import_module(module_name)
            for part in filter(None, attribute.split(".")):
                obj = getattr(obj, part)
            doc = inspect.getdoc(obj) or ""
    except Exception as err:  # a broken plugin must not hide the others
        return f"(cannot be loaded: {err})"
    return plain_text(doc)


# --- the commands --------------------------------------------------------------------


def _plugins(args: argparse.Namespace) -> int:
    found = installed_plugins()
    if not found:
        print("No loopkit plugins are installed.")
        return 0
    width = max(len(p.name) for p in found)
    blocked = disabled_names()
    for plugin in found:
        off = "  (disabled: LOOPKIT_DISABLE_PLUGINS)" if plugin.name in blocked else ""
        print(f"{plugin.name:<{width}}  {plugin.value}  [{plugin.distribution}]{off}")
        print(f"{'':<{width}}  {_describe(plugin.value)}")
    return 0


def _show_loop(args: argparse.Namespace) -> int:
    from loopkit import Sequential

    Sequential().show_loop(plugins=args.names, verbose=args.verbose)
    return 0


def _demo(args: argparse.Namespace) -> int:
    try:
        from sklearn.datasets import load_digits  # type: ignore[import-untyped]
        from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "the demo needs scikit-learn, whose bundled 8x8 digits it trains on (no "
            "download): pip install scikit-learn, or pip install 'loopkit[examples]'."
        ) from err
    import numpy as np

    import loopkit as lk
    from loopkit.layers import Conv2D, Dense, Dropout, GlobalAveragePooling2D, MaxPooling2D
    from loopkit.plugins import EarlyStopping, ModelCheckpoint, TensorBoard

    lk.set_random_seed(42)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]  # (1797, 8, 8, 1)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.2, random_state=0, stratify=digits.target
    )
    layers: list[Any] = [
        Conv2D(32, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
        MaxPooling2D(),
        Conv2D(64, 3, padding="same", activation="relu"),
        GlobalAveragePooling2D(),
        Dropout(0.2),
        Dense(10, activation="softmax"),
    ]
    model = lk.Sequential(layers, name="digits_cnn")
    model.compile(
        optimizer=lk.optimizers.Adam(learning_rate=1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.summary()
    print(
        f"Training on {len(x_train)} digits for at most {args.epochs} epochs; early "
        "stopping ends the run when val_loss has not improved for 5 epochs."
    )
    history = model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=32,
        validation_split=0.1,
        plugins=[
            EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True),
            ModelCheckpoint(args.checkpoint, save_best_only=True),
            TensorBoard(log_dir=args.logdir),
        ],
    )
    ran = len(history.epoch)
    stop = f"stopped early after {ran} of" if ran < args.epochs else "ran all"
    results: Any = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    accuracy = results["accuracy"]
    print(f"Training {stop} {args.epochs} epochs (best weights restored).")
    print(f"Test accuracy: {accuracy:.4f} on {len(x_test)} held-out digits.")
    print(f"Best model: {args.checkpoint} (loopkit.load_model({args.checkpoint!r})).")
    print(f"View the curves: tensorboard --logdir {args.logdir}  (open http://localhost:6006)")
    return 0


# --- parsing and errors --------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: what went wrong and where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _parser() -> _Parser:
    parser = _Parser(
        prog="loopkit",
        description="loopkit: a Keras-style training loop for NumPy, extended by plugins.",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="{demo,plugins,show-loop}",
        parser_class=_Parser,
    )
    demo = commands.add_parser(
        "demo",
        help="train a small CNN on the bundled 8x8 digits, with early stopping",
        description=(
            "Train a small convolutional network on scikit-learn's bundled 8x8 digits "
            "(no download) with early stopping, a checkpoint of the best model and "
            "TensorBoard logs; print the progress and the test accuracy. Needs "
            "scikit-learn: pip install 'loopkit[examples]'."
        ),
    )
    demo.add_argument(
        "--epochs", type=_positive, default=60, help="most epochs to train (default 60)"
    )
    demo.add_argument(
        "--logdir", default="logs", help="TensorBoard log directory (default logs)"
    )
    demo.add_argument(
        "--checkpoint",
        default="checkpoints/digits.npz",
        help="where to keep the best model (default checkpoints/digits.npz)",
    )
    demo.set_defaults(run=_demo)
    listing = commands.add_parser(
        "plugins",
        help="list installed plugins (enable them with plugins=['name'])",
        description=(
            "List every plugin installed under the loopkit.plugins entry points: its "
            "name, where it comes from, the package that installed it and what it "
            "does. Installed is not enabled: enable one with fit(plugins=['name']) or "
            "LOOPKIT_PLUGINS=name."
        ),
    )
    listing.set_defaults(run=_plugins)
    show = commands.add_parser(
        "show-loop",
        help="print which plugins each hook calls, in order",
        description=(
            "Print, for each hook of fit/evaluate/predict in call order, the plugins it "
            "calls in order, with the named installed plugins enabled (as "
            "model.show_loop(plugins=[...]) does)."
        ),
    )
    show.add_argument(
        "names", nargs="*", help="installed plugin names, e.g. early_stopping"
    )
    show.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="include fit's progress output plugin: 1 bar, 2 lines (default 0)",
    )
    show.set_defaults(run=_show_loop)
    return parser


def _quiet_broken_pipe() -> None:
    """Point stdout at /dev/null so the interpreter's last flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured): nothing to do
        pass
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    A reader that stops early (``loopkit plugins | head``) ends the command quietly
    with status 0; a loopkit error, a missing package or an unreadable file prints
    one line to stderr and returns 1; Ctrl-C prints one line and returns 130.
    """
    args = _parser().parse_args(argv)
    run: Any = args.run
    try:
        status: int = run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 0
    except (LoopkitError, ModuleNotFoundError, OSError) as err:
        message = " ".join(str(err).split())
        print(f"loopkit {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"loopkit {args.command}: interrupted", file=sys.stderr)
        return 130  # the shell's status for Ctrl-C
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
