"""The training core (private): models, the flat parameter buffer, the loop, History.

Users import ``Sequential``, ``History`` and ``LoopState`` from ``loopkit``.
"""
