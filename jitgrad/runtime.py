"""Executables: run an IR, compiled when it pays, interpreted until then."""
from __future__ import annotations

from .core import eval_ir


class Executable:
    def __init__(self, ir, label=""):
        self.ir = ir
        self.label = label

    def __call__(self, args):
        return eval_ir(self.ir, args)
