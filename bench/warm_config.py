"""The batch-warm service's configuration: config/demo.toml with its default use case cached.

The batch-warm workload compares the service with the orjson floor like for like, so
its answers must all be at hand: the use case `User.recommendations` defaults to is
per-user and uncached in the demo config, and gets a `cache_ttl` in a copy of it.
"""

from pathlib import Path

WARM_CACHE_TTL = 300.0


def warm_config(directory: Path) -> tuple[Path, str]:
    """A copy of config/demo.toml whose default `recommendations` use case caches answers.

    TOML cannot re-declare a table, so `cache_ttl` goes in as a line right after the use
    case's header. Returns the file and the use case's name.
    """
    import tomllib

    from settings import DEMO_CONFIG, ServedField, Settings

    text = DEMO_CONFIG.read_text(encoding="utf-8")
    name = Settings(**tomllib.loads(text)).default_use_case(ServedField.RECOMMENDATIONS)
    if name is None:
        raise RuntimeError(f"{DEMO_CONFIG} has no use case for User.recommendations")
    header = f"[use_cases.{name}]"
    lines = text.splitlines(keepends=True)
    at = [n for n, line in enumerate(lines) if line.strip() == header]
    if len(at) != 1:
        raise RuntimeError(f"{DEMO_CONFIG}: expected one line {header!r}, found {len(at)}")
    lines.insert(at[0] + 1, f"cache_ttl = {WARM_CACHE_TTL!r}\n")
    path = directory / "bench-warm.toml"
    path.write_text("".join(lines), encoding="utf-8")
    try:
        ttl = Settings(**tomllib.loads(path.read_text(encoding="utf-8"))).use_cases[name].cache_ttl
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise RuntimeError(
            f"{path} (demo.toml + cache_ttl for {name}) is not valid: {exc}"
        ) from exc
    if ttl != WARM_CACHE_TTL:
        raise RuntimeError(f"{path}: {name}.cache_ttl is {ttl}, not {WARM_CACHE_TTL}")
    return path, name
