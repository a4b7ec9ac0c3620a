"""`itsm webhooks …`: serve the receiver of the webhook sources."""

from __future__ import annotations

from typing import Annotated

import typer

from flows._cli_base import ConfigOption, _config, err, out

webhooks_app = typer.Typer(
    help="Inbound webhooks: POST /webhooks/<source> opens, updates, comments and resolves tickets.",
    no_args_is_help=True,
)


@webhooks_app.command("serve")
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8088,
    apply: Annotated[
        bool, typer.Option(help="Apply deliveries here (--no-apply: only receive; `itsm run` applies them).")
    ] = True,
) -> None:
    """Receive deliveries for every `kind: webhook` source of the config and apply them within seconds.

    Each delivery is authenticated (the source's `auth`), committed, then answered 202; a retry of one already
    received is answered 200 and changes nothing. GET /healthz for probes; the API is described at /openapi.json
    (and /docs). Stop with Ctrl-C: deliveries landed but not yet applied are applied at the next start or `itsm run`.
    """
    from connectors.webhook.config import WebhookSource

    hub = _config(config)
    names = [s.name for s in hub.sources if isinstance(s, WebhookSource) and s.enabled]
    if not names:
        err.print("error: the config has no enabled source of kind webhook; add one (see README, Webhooks and alerts)")
        raise typer.Exit(2)
    import uvicorn

    from flows.webhooks import create_app

    out.print(f"webhooks for {', '.join(names)} on http://{host}:{port}/webhooks/<source>", highlight=False)
    uvicorn.run(
        create_app(config, apply=apply), host=host, port=port, log_level="info", access_log=True, server_header=False
    )
