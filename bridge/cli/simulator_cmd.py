"""`bridge simulator`: serve the WisPanel stand-in (demo panel, staging aid)."""

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=3082, show_default=True)
@click.option(
    "--api-key",
    default=None,
    envvar="WISPANEL_SIM_API_KEY",
    help="Admin API key (wsp_…; or WISPANEL_SIM_API_KEY); generated if absent.",
)
@click.option("--username", default="admin", show_default=True, help="Admin login.")
@click.option("--password", default=None, help="Admin password; generated if absent.")
@click.option("--limit", type=int, default=60, show_default=True, help="Requests/min.")
@click.option(
    "--window",
    type=click.Choice(["fixed", "sliding"]),
    default="fixed",
    show_default=True,
)
@click.option(
    "--panels", type=int, default=0, show_default=True, help="Extra panels p1…pN."
)
@click.option("--ssl-delay", type=float, default=5.0, show_default=True)
def simulator(
    host: str,
    port: int,
    api_key: str | None,
    username: str,
    password: str | None,
    limit: int,
    window: str,
    panels: int,
    ssl_delay: float,
) -> None:
    """Serve a simulated WisPanel panel and print its URL and credentials."""
    from bridge.simulator import SimulatorConfig, serve

    try:
        config = SimulatorConfig(
            limit=limit,
            window=window,  # type: ignore[arg-type]
            api_key=api_key,
            username=username,
            password=password,
            ssl_delay_s=ssl_delay,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    serve(config, panels, host, port)
