"""`python -m cxr_local.janitor STACK_PID FILE...`: removes the stack's ready files (they carry its AWS secret)
when the stack process dies without stopping (kill -9), and says so; the stack spawns it with a parent-death signal."""
import os
import signal
import sys


def main(argv: list[str]) -> None:
    stack_pid, paths = int(argv[0]), argv[1:]

    def on_term(*_) -> None:
        removed = []  # a clean stop removes the files itself before it stops us
        for path in paths:
            try:
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                pass
        if removed:
            print(f"[cxr_local] FATAL: the stack process {stack_pid} died without stopping (killed?); its embedded "
                  f"moto died with it and what changed since the stack started (jobs, results, keys, queued "
                  f"messages) is lost; the last clean stop's snapshot is kept. Removed {', '.join(removed)}.",
                  file=sys.stderr, flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != stack_pid:  # the stack died before the handler was in place
        on_term()
    while True:
        signal.pause()


if __name__ == "__main__":
    main(sys.argv[1:])
