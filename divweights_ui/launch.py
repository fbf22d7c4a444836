"""Starting the studio: the options of `python app.py` and `divweights studio` (one parser for both).
Gradio is imported only when the studio starts, so `divweights --help` stays quick."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this computer only)")
    parser.add_argument("--port", type=int, default=None, help="default: 7860, or the next free port")
    parser.add_argument("--data-dir", default=None, help="data root (default: $DIVWEIGHTS_DATA_DIR, or data/ in a "
                                                         "checkout, or ~/.local/share/divweights)")
    parser.add_argument("--share", action="store_true", help="public gradio.live link (needs --auth)")
    parser.add_argument("--auth", default=None, metavar="USER:PASSWORD", help="require a login")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                        help="another web origin (e.g. http://localhost:3000) whose pages may call the studio; "
                             "repeatable (default: only the studio's own page)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve the studio until interrupted; 2 with one sentence for options that cannot work."""
    from divweights.data.storage import default_data_root
    from divweights_ui.layout import build_demo
    from divweights_ui.serving import check_exposure, check_origins, guard_first, launch_kwargs, port_in_use

    try:
        auth = check_exposure(args.host, args.share, args.auth)
        origins = check_origins(args.allow_origin)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.port is not None and port_in_use(args.host, args.port):
        print(f"error: port {args.port} on {args.host} is already in use (another studio?); choose one with --port",
              file=sys.stderr)
        return 2
    data_root = default_data_root() if args.data_dir is None else args.data_dir
    demo = build_demo(data_root=data_root)  # serves at once; the start dataset is prepared in the background
    print("[divweights] preparing the start dataset in the background (the first start computes embeddings and "
          "weights and caches them; later starts are quick); the page fills in when it is ready", flush=True)
    demo.queue(default_concurrency_limit=4, max_size=64).launch(
        server_name=args.host, server_port=args.port, share=args.share, auth=auth, quiet=True,
        prevent_thread_lock=True, **launch_kwargs(data_root, args.host, args.share, origins))
    guard_first(demo)  # the Host/Origin guard runs before gradio's own CORS layer
    # our own line instead of gradio's (its hint about public links contradicts --share and --auth)
    print(f"[divweights] studio at {demo.share_url or demo.local_url}", flush=True)
    demo.block_thread()
    return 0
