"""`python -m cxr_gateway`: the DICOM gateway (Storage SCP + STOW-RS in, DICOM SR out); settings from --config, then
CXR_GATEWAY_* environment variables, then these options. See docs/pacs.md."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from . import config as config_module
from .app import Gateway


def parse_args(argv: list[str] | None = None) -> config_module.GatewayConfig:
    parser = argparse.ArgumentParser(prog="python -m cxr_gateway", description=__doc__)
    parser.add_argument("--config", help="a JSON (or .toml) file of settings (names as in GatewayConfig)")
    parser.add_argument("--api-url", help="the service's API (default http://127.0.0.1:8080)")
    parser.add_argument("--api-key", help="the gateway's own client key for the service (or CXR_GATEWAY_API_KEY)")
    parser.add_argument("--ae-title", help="the gateway's AE title (default CXR_GATEWAY)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--dicom-port", type=int, help="DICOM port (default 11112; 0: any free port)")
    parser.add_argument("--http-port", type=int, help="STOW-RS, /health and /metrics port (default 8044; 0: any)")
    parser.add_argument("--allow", action="append", dest="allowed_aets", metavar="AE_TITLE",
                        help="a calling AE title that may connect (repeatable; required)")
    parser.add_argument("--allow-network", action="append", dest="allowed_networks", metavar="CIDR",
                        help="a source network that may connect (repeatable; default any)")
    parser.add_argument("--stow-token", action="append", dest="stow_tokens", metavar="TOKEN",
                        help="a token STOW-RS clients send as x-api-key or Bearer (repeatable; none: STOW-RS off)")
    parser.add_argument("--destination", help="where SRs go: AE_TITLE@HOST:PORT (C-STORE) or a STOW-RS URL")
    parser.add_argument("--destination-header", action="append", default=[], metavar="NAME=VALUE",
                        help="a header sent with every STOW-RS delivery (repeatable)")
    parser.add_argument("--destination-tls", action="store_true", default=None,
                        help="C-STORE SRs over DICOM TLS (the destination's certificate verified, host name checked)")
    parser.add_argument("--destination-tls-ca", metavar="PEM",
                        help="the CA that signed the destination's certificate (implies --destination-tls)")
    parser.add_argument("--allow-stand-in", action="store_true", default=None,
                        help="deliver results from stand-in weights (random-init/provided), marked as such in the SR")
    parser.add_argument("--send-heatmaps", type=int, nargs="?", const=3, metavar="N",
                        help="also send heatmap overlays of the N top findings (default 3) as Secondary Captures "
                             "into the study (off by default)")
    parser.add_argument("--store", dest="store_path", help="the encrypted store (sqlite file)")
    parser.add_argument("--store-ttl-hours", type=float, help="undelivered items are deleted after this (default 72)")
    parser.add_argument("--ready-file", help="write the gateway's addresses here (JSON, mode 0600) once listening")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="[cxr_gateway] %(levelname)s %(message)s")
    logging.getLogger("highdicom").setLevel(logging.WARNING)  # its INFO lines name the source instance's UIDs
    headers = {}
    for pair in args.destination_header:
        name, sep, value = pair.partition("=")
        if not sep:
            parser.error(f"--destination-header expects NAME=VALUE, got {pair!r}")
        headers[name] = value
    overrides = {name: value for name, value in vars(args).items()
                 if name not in ("config", "destination_header", "log_level")}
    if headers:
        overrides["destination_headers"] = headers
    return config_module.load(args.config, overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_args(argv)
        gateway = Gateway(config)
    except ValueError as error:
        print(f"[cxr_gateway] configuration error: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    info = gateway.start()
    print(f"[cxr_gateway] DICOM: AE title {info['ae_title']} on {info['host']}:{info['dicom_port']} "
          f"(calling AE titles allowed: {', '.join(config.allowed_aets)})", flush=True)
    print(f"[cxr_gateway] STOW-RS: {info['stow_url']}" + ("" if config.stow_tokens else " (off: no stow token)"),
          flush=True)
    print(f"[cxr_gateway] results to: {info['destination'] or 'nowhere yet (no destination): kept until TTL'}"
          + (" - stand-in results ALLOWED" if config.allow_stand_in else ""), flush=True)
    try:
        while not stop.wait(1):
            pass
    finally:
        gateway.stop()
    logging.shutdown()
    os._exit(0)  # without waiting up to 20 s for long polls in hand: their items are durable and resume on restart


if __name__ == "__main__":
    sys.exit(main())
