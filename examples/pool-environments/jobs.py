"""Two pools whose dependencies conflict: each runs in a virtualenv of its own.

`report` and `render` both use `tabulate`, at versions that cannot live in one environment.
They import it inside the job function, so web, the scheduler and `yard.submit` never need it.
"""

from __future__ import annotations

from jobyard import Yard

yard = Yard("pool-environments")


@yard.job("legacy.report", pool="legacy")
def report(rows: list[list[str]]) -> dict[str, str]:
    """A table rendered by the old tabulate that the legacy tool pins."""
    import tabulate

    return {"tabulate": tabulate.__version__, "table": tabulate.tabulate(rows)}


@yard.job("modern.render", pool="modern")
def render(rows: list[list[str]]) -> dict[str, str]:
    """The same table rendered by a current tabulate, each job in a process of its own."""
    import tabulate

    return {"tabulate": tabulate.__version__, "table": tabulate.tabulate(rows)}
