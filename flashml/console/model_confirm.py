"""The confirm step of the model page's dangerous changes: archiving a version, deleting a version or an alias,
rolling an alias back, and moving ``production`` (what calls without a version get).

Each change's POST needs ``confirm=yes``; without it the handler answers a page that says what the change does
to callers (the sentences below) and posts the same fields again with ``confirm=yes``. A plain page and form, so
it works without JavaScript, and a forged or replayed one-click form still stops at the question.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flashml.registry.aliases import SERVED


@dataclass(frozen=True)
class Confirmation:
    """What the confirm step says, and the form that makes the change after all."""

    title: str
    lines: list[str]
    action: str
    yes: str
    tab: str
    fields: dict[str, str] = field(default_factory=dict)
    warning: bool = False


def confirmed(form: Any) -> bool:
    return str(form.get("confirm") or "") == "yes"


def _targets(versions: dict[str, Any]) -> str:
    return ", ".join(f"v{n}" if len(versions) == 1 else f"v{n} {w}%" for n, w in versions.items())


def _served_now(info: dict[str, Any]) -> str:
    """What calls without a version reach today, in words (the registry's serving resolution)."""
    serving = info["serving"]
    return _targets(serving["versions"]) if serving else "nothing"


def _base(name: str) -> str:
    return f"/models/{quote(name, safe='')}"


def archive(info: dict[str, Any], version: int) -> Confirmation:
    name = info["name"]
    ready = [v["version"] for v in info["versions"] if v["state"] == "ready"]
    pointing = [a["alias"] for a in info["aliases"] if str(version) in a["versions"]]
    lines = []
    if ready == [version]:
        lines.append(f"Version {version} is the only version that serves {name}: once archived, every call to "
                     f"{name} fails until you restore it or publish another version.")
    elif info["serving"] and info["serving"]["alias"] is None and info["serving"]["version"] == version:
        newer = max(n for n in ready if n != version)
        lines.append(f"Version {version} answers the calls without a version: once archived, they go to "
                     f"v{newer}.")
    if pointing:
        lines.append(f"Aliases that point at it ({', '.join(pointing)}) keep it serving: the archive is refused "
                     f"until you move or delete them (Traffic tab).")
    lines.append("An archived version answers no requests; Restore brings it back.")
    return Confirmation(f"Archive version {version} of {name}?", lines, f"{_base(name)}/versions/{version}/archive",
                        f"Yes, archive v{version}", "versions", warning=ready == [version])


def delete_version(info: dict[str, Any], version: int, force: bool) -> Confirmation:
    name = info["name"]
    return Confirmation(f"Delete version {version} of {name}?",
                        [f"This removes version {version} and its files for good; it cannot be undone."],
                        f"{_base(name)}/versions/{version}/delete", f"Yes, delete version {version}", "versions",
                        {"force": "on"} if force else {}, warning=True)


def move_production(info: dict[str, Any], values: dict[str, str], body: dict[str, Any]) -> Confirmation:
    name = info["name"]
    to = f"v{body['version']}" if "version" in body else _targets(body.get("versions") or {})
    lines = [f"Calls to {name} without a version go to {to} at once; today they reach {_served_now(info)}."]
    if values.get("shadow"):
        lines.append(f"Shadow: {values['shadow']} (a share also runs there, in the background).")
    fields = {k: v for k, v in values.items() if v}
    return Confirmation(f"Move production of {name} to {to}?", lines, f"{_base(name)}/aliases",
                        f"Yes, serve {to}", "traffic", fields)


def rollback(info: dict[str, Any], alias: str) -> Confirmation:
    name = info["name"]
    found = next((a for a in info["aliases"] if a["alias"] == alias), None)
    back = _targets(found["previous"]["versions"]) if found and found.get("previous") else "its previous target"
    now = _targets(found["versions"]) if found else "its target"
    who = "Calls without a version" if alias == SERVED else f"Calls that name {alias}"
    return Confirmation(f"Roll {alias} back to {back}?", [f"{who} go to {back} at once instead of {now}."],
                        f"{_base(name)}/aliases/{quote(alias, safe='')}/rollback", f"Yes, roll back to {back}",
                        "traffic")


def delete_alias(info: dict[str, Any], alias: str) -> Confirmation:
    name = info["name"]
    if alias == SERVED:
        lines = [f"Calls to {name} without a version then go to the newest ready version"
                 f"{' (v' + str(info['latest_ready']) + ')' if info['latest_ready'] else ''}, not to "
                 f"{_served_now(info)}."]
    else:
        lines = [f"Calls that name {alias} fail (404) once it is gone."]
    return Confirmation(f"Delete the alias {alias} of {name}?", lines,
                        f"{_base(name)}/aliases/{quote(alias, safe='')}/delete", f"Yes, delete {alias}", "traffic",
                        warning=alias == SERVED)
