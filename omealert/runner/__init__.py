"""The watcher's tick — poll, evaluate, plan, persist, queue — its loop, and its log lines."""

from .tick import ReloadHook, Runner, TickReport

__all__ = ["ReloadHook", "Runner", "TickReport"]
