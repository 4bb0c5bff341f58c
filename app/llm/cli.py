"""``litscreen llm-simulator``: run the LLM simulator (tests, benchmarks and the demo use it)."""

from __future__ import annotations

import click


@click.command("llm-simulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 = any free port).")
@click.option("--latency", default=0.0, show_default=True, type=float, help="Seconds before every answer.")
@click.option("--latency-jitter", default=0.0, show_default=True, type=float,
              help="Extra uniform random delay of up to this many seconds.")
@click.option("--error-rate", default=0.0, show_default=True, type=float, help="Share of 500 answers.")
@click.option("--rate-limit-rate", default=0.0, show_default=True, type=float,
              help="Share of 429 answers (with Retry-After).")
@click.option("--retry-after", default=1.0, show_default=True, type=float,
              help="Seconds sent in Retry-After on 429 answers.")
@click.option("--malformed-rate", default=0.0, show_default=True, type=float,
              help="Share of answers whose content is not valid JSON.")
@click.option("--malformed-repairable", is_flag=True,
              help="Never answer a repair request (one with an earlier assistant turn) with malformed output.")
@click.option("--seed", default=None, type=int, help="Seed of the random knobs (reproducible storms).")
@click.option("--wrong-quote-fields", default="", show_default=False,
              help="Comma list of full-text fields answered with a quote that is not in the document.")
def llm_simulator(host: str, port: int, latency: float, latency_jitter: float, error_rate: float,
                  rate_limit_rate: float, retry_after: float, malformed_rate: float, malformed_repairable: bool,
                  seed: int | None, wrong_quote_fields: str) -> None:
    """Run an OpenAI-compatible LLM simulator with deterministic screening decisions."""
    import logging

    from app.llm.simulator import SimulatorKnobs, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name, rate in (("--error-rate", error_rate), ("--rate-limit-rate", rate_limit_rate),
                       ("--malformed-rate", malformed_rate)):
        if not 0.0 <= rate <= 1.0:
            raise click.BadParameter(f"{name} must be between 0 and 1, got {rate}")
    if error_rate + rate_limit_rate > 1.0:
        raise click.BadParameter("--error-rate plus --rate-limit-rate must not exceed 1")
    serve(host, port, SimulatorKnobs(latency=latency, latency_jitter=latency_jitter, error_rate=error_rate,
                                     rate_limit_rate=rate_limit_rate, retry_after=retry_after,
                                     malformed_rate=malformed_rate, malformed_repairable=malformed_repairable,
                                     seed=seed, wrong_quote_fields=tuple(
                                         f.strip() for f in wrong_quote_fields.split(",") if f.strip())))


def register(main: click.Group) -> None:
    """Add the LLM commands to the ``litscreen`` group."""
    main.add_command(llm_simulator)
