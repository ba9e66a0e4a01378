"""``ipfl explore``: serve the market explorer page on 127.0.0.1 (for teaching)."""

from __future__ import annotations

import socket
import threading
import webbrowser

import click

from ipfl.cli import InputError
from ipfl.options import Int


@click.command(name="explore")
@click.option("--port", type=Int(0, 65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser tab.")
@click.option("--file", "path", type=click.Path(dir_okay=False), default=None,
              help="Start from this market file (.json or .csv).")
def command(port: int, no_browser: bool, path: str | None) -> None:
    """Serve a page where you edit a small market and watch the mechanism respond."""
    try:  # the explore extra; the lean base install does not have it
        import uvicorn

        from ipfl.explorer.app import create_app
    except ImportError as exc:
        raise InputError(f"ipfl explore needs the explore extra ({exc.name} is missing): "
                         "pip install 'ipfl[explore]'") from None
    from ipfl.explorer.compute import MAX_CLIENTS
    from ipfl.market_files import load_document, read_market

    doc = None
    if path is not None:
        try:
            market = read_market(path)
            doc = load_document(path)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if market.m > MAX_CLIENTS:
            raise InputError(f"{path}: the explorer takes 2-{MAX_CLIENTS} clients, "
                             f"got {market.m}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        raise InputError(f"--port: cannot listen on 127.0.0.1:{port} ({exc.strerror})") from None
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    click.echo(f"ipfl explorer on {url} (Ctrl+C stops it)", err=True)
    if not no_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    config = uvicorn.Config(create_app(doc, port=sock.getsockname()[1]), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
