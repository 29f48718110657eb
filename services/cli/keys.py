"""`cim keys`: API keys, roles and the audit of restricted reads."""

from __future__ import annotations

import typer
from rich.table import Table

from .output import console

app = typer.Typer(help="API keys and roles. Example: cim keys create --role utilities", no_args_is_help=True)


@app.command("create")
def keys_create(
    role: str = typer.Option(..., help="Role of the key: `cim keys roles` lists them."),
    name: str = typer.Option(None, help="A label, e.g. who holds the key."),
):
    """Create an API key for a role. The key is printed once; only its hash is stored.

    Example: cim keys create --role water --name "water utility GIS"
    """
    from services import auth

    key_id, token = auth.create_key(role, name)
    console.print(
        f"key {key_id} for role {role}" + (f" ({name})" if name else "") + ": store it now, "
        "it cannot be shown again"
    )
    print(token)


def _when(d) -> str:
    return d.strftime("%Y-%m-%d %H:%M") if d else ""


@app.command("list")
def keys_list():
    """List API keys (id, label, role, first characters, when created, last used, revoked).

    Example: cim keys list
    """
    from services import auth

    t = Table("id", "name", "role", "key", "created", "last used", "revoked")
    for k in auth.list_keys():
        t.add_row(
            str(k["id"]),
            k["name"] or "",
            k["role"],
            k["prefix"] + "...",
            _when(k["created_at"]),
            _when(k["last_used_at"]),
            _when(k["revoked_at"]) and f"revoked {_when(k['revoked_at'])}",
        )
    console.print(t)


@app.command("revoke")
def keys_revoke(key_id: int = typer.Argument(..., help="Id of the key, from `cim keys list`.")):
    """Revoke an API key: it is refused from the next request on.

    Example: cim keys revoke 3
    """
    from services import auth

    auth.revoke_key(key_id)
    console.print(f"revoked key {key_id}")


@app.command("roles")
def keys_roles():
    """List roles and the layers each may read beyond the public ones ('*' is every layer).

    Example: cim keys roles
    """
    from services import auth

    t = Table("role", "grants", "description")
    for r in auth.list_roles():
        t.add_row(r["name"], ", ".join(r["grants"]) or "(public layers only)", r["description"])
    console.print(t)


@app.command("audit")
def keys_audit(
    limit: int = typer.Option(50, help="How many of the latest entries."),
    layer: str = typer.Option(None, help="Only this layer, e.g. pipes_water."),
):
    """Show who read restricted layers (and who was refused), latest first.

    Example: cim keys audit --layer pipes_water --limit 20
    """
    from services import auth

    t = Table("when", "key", "role", "layer", "object", "status", "client", "request")
    for a in auth.audit_entries(limit, layer):
        key = f"{a['key_id']} {a['key_name'] or ''}".strip() if a["key_id"] else "anonymous"
        t.add_row(
            a["at"].strftime("%Y-%m-%d %H:%M:%S"),
            key,
            a["role"],
            a["layer"],
            str(a["object_id"] or ""),
            str(a["status"]),
            a["client"] or "",
            a["path"],
        )
    console.print(t)
