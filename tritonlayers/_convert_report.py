"""What tritonlayers.convert did to each module: entries to inspect in code, and a table to print."""
from typing import NamedTuple

ACTIONS = ("swapped", "fused", "folded", "rewritten", "left alone")


class ReportEntry(NamedTuple):
    path: str  # qualified name in the model; "" is the model itself
    original: type  # the module's class before conversion
    action: str  # one of ACTIONS
    reason: str = ""


def type_name(cls):
    """torch.nn.X / tritonlayers.nn.X for the library classes, module.qualname for the rest."""
    for package in ("torch.nn", "tritonlayers.nn"):
        if cls.__module__.startswith(package + "."):
            return f"{package}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


class ConversionReport:
    """One entry per module convert() swapped, fused, folded, rewrote or left alone with a reason, in model
    order. Iterate it, index it by path (report["layer1.0.bn1"]), filter it (report.by_action("fused")), or
    print it."""

    def __init__(self):
        self._entries = {}

    def record(self, path, original, action, reason=""):
        """Set the entry of `path`; a later action (fused, folded) replaces an earlier one (swapped)."""
        if action not in ACTIONS:
            raise ValueError(f"ConversionReport: 'action' must be one of {ACTIONS}, got {action!r}")
        previous = self._entries.get(path)
        self._entries[path] = ReportEntry(path, previous.original if previous else original, action, reason)

    def add_reason(self, path, text):
        entry = self._entries[path]
        self._entries[path] = entry._replace(reason=f"{entry.reason}; {text}" if entry.reason else text)

    def sort(self, paths):
        """Put the entries in the order of `paths` (the model's named_modules)."""
        rank = {path: index for index, path in enumerate(paths)}
        self._entries = dict(sorted(self._entries.items(), key=lambda item: rank.get(item[0], len(rank))))

    def __contains__(self, path):
        return path in self._entries

    def __getitem__(self, path):
        return self._entries[path]

    def __iter__(self):
        return iter(self._entries.values())

    def __len__(self):
        return len(self._entries)

    def by_action(self, action):
        return [entry for entry in self if entry.action == action]

    def __str__(self):
        rows = [("module", "original type", "action", "reason")]
        rows += [(entry.path or "(model)", type_name(entry.original), entry.action, entry.reason) for entry in self]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        lines = [("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3]).rstrip()
                 for row in rows]
        lines.insert(1, "  ".join("-" * width for width in widths) + "  " + "-" * len(rows[0][3]))
        return "\n".join(lines + [self.summary()])

    def summary(self):
        """One line: how many modules each action took, e.g. "19 swapped, 18 fused, 0 folded, ..."."""
        return ", ".join(f"{len(self.by_action(action))} {action}" for action in ACTIONS)

    def __repr__(self):
        return f"ConversionReport({len(self)} entries)\n{self}"
