"""Data and cost of a live online session: data per participant, cost, affordability.

Rule: figures come from ``data/zoom_bandwidth.json`` (two dated vintages, each cited) and targets
from ``data/a4ai.json``; the arithmetic is pure functions (:func:`estimate`, :func:`affordability`)
that the widget and the workbooks call alike. Every participant is counted as sending and receiving
at the chosen setting (the planning upper bound); MB are 10^6 bytes:
MB per hour = kbps x 3600 / 8 / 1000.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import ipywidgets as widgets

from atelier.errors import AtelierError
from atelier.widgets import i18n, svg, tables
from atelier.widgets.base import FULL_WIDTH, AtelierWidget, prompt, row


def figures(vintage: str = "current") -> dict:
    """The figures of one vintage (``"current"`` or ``"2020"``), with its source and date."""
    vintages = tables.load("zoom_bandwidth")["vintages"]
    if vintage not in vintages:
        raise AtelierError(
            f"bandwidth: no figure set {vintage!r}; choose one of {', '.join(vintages)}"
        )
    return vintages[vintage]


@dataclass(frozen=True)
class Estimate:
    """The data a session uses, in MB (10^6 bytes); costs in local currency (``None``: no price)."""

    vintage: str
    meeting: str
    resolution: str
    minutes: float
    participants: int
    kbps_up: float
    kbps_down: float
    mb_sent: float
    mb_received: float
    mb_per_participant: float
    mb_total: float
    cost_per_participant: float | None
    cost_total: float | None

    def as_dict(self) -> dict:
        """The estimate as plain JSON."""
        return asdict(self)


def megabytes(kbps: float, minutes: float) -> float:
    """Megabytes moved by a stream of ``kbps`` over ``minutes`` (0.6 Mbps for an hour is 270 MB)."""
    return kbps * minutes * 60 / 8 / 1000


def estimate(
    meeting: str = "group",
    resolution: str = "360p",
    minutes: float = 60,
    participants: int = 2,
    vintage: str = "current",
    price_per_gb: float | None = None,
) -> Estimate:
    """Data per participant and in total for a session, and its cost if a price per GB is given.

    Raises:
        AtelierError: unknown meeting type or resolution for that vintage, or a negative amount.
    """
    table = figures(vintage)["meetings"]
    if meeting not in table:
        raise AtelierError(
            f"bandwidth: meeting type {meeting!r} not in the {vintage} figures ({', '.join(table)})"
        )
    if resolution not in table[meeting]:
        raise AtelierError(
            f"bandwidth: setting {resolution!r} not in the {vintage} figures for {meeting} "
            f"({', '.join(table[meeting])})"
        )
    if minutes < 0 or participants < 1 or (price_per_gb is not None and price_per_gb < 0):
        raise AtelierError(
            "bandwidth: minutes and price must not be negative; at least one participant"
        )
    rates = table[meeting][resolution]
    sent = megabytes(rates["up"], minutes)
    received = megabytes(rates["down"], minutes)
    each = sent + received
    cost_each = None if price_per_gb is None else each / 1000 * price_per_gb
    return Estimate(
        vintage=vintage,
        meeting=meeting,
        resolution=resolution,
        minutes=minutes,
        participants=participants,
        kbps_up=rates["up"],
        kbps_down=rates["down"],
        mb_sent=sent,
        mb_received=received,
        mb_per_participant=each,
        mb_total=each * participants,
        cost_per_participant=cost_each,
        cost_total=None if cost_each is None else cost_each * participants,
    )


def affordability(price_per_gb: float, monthly_income: float, gigabytes: float = 1.0) -> float:
    """Price of ``gigabytes`` of data as a percentage of monthly income (GNI per capita / 12).

    Raises:
        AtelierError: income is not positive.
    """
    if monthly_income <= 0:
        raise AtelierError("bandwidth: monthly income must be more than 0")
    return price_per_gb * gigabytes / monthly_income * 100


def targets() -> list[dict]:
    """The A4AI affordability targets (gigabytes, percent of monthly income, year)."""
    return tables.load("a4ai")["targets"]


class BandwidthCalculator(AtelierWidget):
    """How much data a live session costs each participant, and whether it is affordable.

    Example::

        from atelier.widgets import BandwidthCalculator
        BandwidthCalculator(minutes=90, participants=40, price_per_gb=2.5, monthly_income=150,
                            currency="USD")

    Args:
        widget_id: the id under which the inputs are saved (``None``: nothing stored, e.g. a public
            app).
        meeting: ``"one_to_one"``, ``"group"``, ``"audio"`` (or ``"screen_share"`` in the 2020
            figures).
        resolution: a setting of that meeting type (``"360p"``, ``"720p"``, ``"1080p"``; ``"hq"`` in
            2020).
        minutes: length of the session.
        participants: number of people connected.
        vintage: ``"current"`` or ``"2020"`` Zoom figures.
        price_per_gb: local price of 1 GB of mobile data (optional).
        monthly_income: local average monthly income, GNI per capita / 12 (optional).
        currency: the currency's code or symbol, as shown to the trainee.
    """

    kind = "bandwidth"

    def __init__(
        self,
        widget_id: str | None = None,
        *,
        meeting: str = "group",
        resolution: str = "360p",
        minutes: float = 60,
        participants: int = 20,
        vintage: str = "current",
        price_per_gb: float | None = None,
        monthly_income: float | None = None,
        currency: str = "",
        **kwargs,
    ):
        self.currency = currency
        self._defaults = {
            "vintage": vintage,
            "meeting": meeting,
            "resolution": resolution,
            "minutes": minutes,
            "participants": participants,
            "price_per_gb": price_per_gb,
            "monthly_income": monthly_income,
        }
        estimate(
            meeting, resolution, minutes, participants, vintage, price_per_gb
        )  # fail early, clearly
        super().__init__(widget_id, **kwargs)
        if self.value is None:
            # The author's starting inputs are not the trainee's answer: show them without saving.
            self._restoring = True
            try:
                self.value = dict(self._defaults)
            finally:
                self._restoring = False

    def _build(self):
        style = {"description_width": "initial"}
        full = widgets.Layout(**FULL_WIDTH)
        vintages = tables.load("zoom_bandwidth")["vintages"]
        self._vintage = widgets.Dropdown(
            options=[(self._(f"bandwidth.vintage.{v}"), v) for v in vintages],
            description=self._("bandwidth.vintage"),
            style=style,
            layout=full,
        )
        self._meeting = widgets.Dropdown(
            description=self._("bandwidth.meeting"), style=style, layout=full
        )
        self._resolution = widgets.Dropdown(
            description=self._("bandwidth.resolution"), style=style, layout=full
        )
        number = widgets.Layout(width="auto", max_width="100%")
        self._minutes = widgets.BoundedIntText(
            min=0, max=24 * 60, description=self._("bandwidth.minutes"), style=style, layout=number
        )
        self._participants = widgets.BoundedIntText(
            min=1,
            max=100000,
            description=self._("bandwidth.participants"),
            style=style,
            layout=number,
        )
        money = self._("bandwidth.price", currency=self.currency).replace(" ()", "")
        self._price = widgets.Text(
            description=money, continuous_update=False, style=style, layout=number
        )
        income = self._("bandwidth.income", currency=self.currency).replace(" ()", "")
        self._income = widgets.Text(
            description=income, continuous_update=False, style=style, layout=number
        )
        for control in (
            self._vintage,
            self._meeting,
            self._resolution,
            self._minutes,
            self._participants,
        ):
            control.observe(self._changed, "value")
        for control in (self._price, self._income):
            control.observe(self._changed, "value")
        self._result = widgets.HTML(layout=full)
        self._source = widgets.HTML(layout=full)
        return [
            prompt(self._("bandwidth.intro")),
            self._vintage,
            self._meeting,
            self._resolution,
            row(self._minutes, self._participants),
            row(self._price, self._income),
            self._result,
            self._source,
        ]

    def _changed(self, _change):
        if self._redrawing:
            return
        vintage = self._vintage.value
        meetings = figures(vintage)["meetings"]
        meeting = self._meeting.value if self._meeting.value in meetings else next(iter(meetings))
        resolutions = meetings[meeting]
        resolution = (
            self._resolution.value
            if self._resolution.value in resolutions
            else next(iter(resolutions))
        )
        self._set_from_control(
            {
                "vintage": vintage,
                "meeting": meeting,
                "resolution": resolution,
                "minutes": self._minutes.value,
                "participants": self._participants.value,
                "price_per_gb": i18n.parse_number(self._price.value),
                "monthly_income": i18n.parse_number(self._income.value),
            }
        )

    def _coerce(self, value):
        if not isinstance(value, dict):
            return None
        merged = {**self._defaults, **{k: v for k, v in value.items() if k in self._defaults}}
        try:
            estimate(
                merged["meeting"],
                merged["resolution"],
                merged["minutes"],
                merged["participants"],
                merged["vintage"],
            )
        except (AtelierError, TypeError):
            return None
        return merged

    def _show(self, value):
        value = value or self._defaults
        meetings = figures(value["vintage"])["meetings"]
        self._vintage.value = value["vintage"]
        self._meeting.options = [(self._(f"bandwidth.meeting.{m}"), m) for m in meetings]
        self._meeting.value = value["meeting"]
        self._resolution.options = [
            (self._(f"bandwidth.resolution.{r}"), r) for r in meetings[value["meeting"]]
        ]
        self._resolution.value = value["resolution"]
        self._minutes.value = int(value["minutes"])
        self._participants.value = int(value["participants"])
        for control, number in (
            (self._price, value["price_per_gb"]),
            (self._income, value["monthly_income"]),
        ):
            if i18n.parse_number(control.value) != number:
                control.value = (
                    "" if number is None else i18n.format_number(number, self.language, 2)
                )
        self._result.value = self.result_html()
        self._source.value = tables.citation(
            tables.load("zoom_bandwidth"), figures(value["vintage"])
        )

    @property
    def result(self) -> Estimate:
        """The estimate for the inputs shown now."""
        v = self.value or self._defaults
        return estimate(
            v["meeting"],
            v["resolution"],
            v["minutes"],
            v["participants"],
            v["vintage"],
            v["price_per_gb"],
        )

    def result_html(self) -> str:
        """The results as an accessible table, with affordability against the A4AI targets."""
        result = self.result
        v = self.value or self._defaults
        n = lambda x, d=1: i18n.format_number(x, self.language, d)  # noqa: E731
        rows = [
            [
                self._("bandwidth.rate"),
                f"{n(result.kbps_up, 0)} / {n(result.kbps_down, 0)} {self._('unit.kbps')}",
            ],
            [
                self._("bandwidth.per_participant"),
                f"{n(result.mb_per_participant)} {self._('unit.mb')}",
            ],
            [self._("bandwidth.total"), f"{n(result.mb_total)} {self._('unit.mb')}"],
        ]
        if result.cost_per_participant is not None:
            rows.append(
                [
                    self._("bandwidth.cost_each"),
                    f"{n(result.cost_per_participant, 2)} {self.currency}",
                ]
            )
            rows.append(
                [self._("bandwidth.cost_total"), f"{n(result.cost_total, 2)} {self.currency}"]
            )
        lines = []
        if v["price_per_gb"] is not None and v["monthly_income"]:
            session = affordability(
                v["price_per_gb"], v["monthly_income"], result.mb_per_participant / 1000
            )
            rows.append([self._("bandwidth.session_share"), f"{n(session, 2)} %"])
            for target in targets():
                share = affordability(v["price_per_gb"], v["monthly_income"], target["gigabytes"])
                met = share <= target["percent_of_monthly_income"]
                key = "bandwidth.target_met" if met else "bandwidth.target_missed"
                text = self._(
                    key,
                    gb=target["gigabytes"],
                    share=n(share, 2),
                    limit=target["percent_of_monthly_income"],
                    year=target["year"],
                )
                css = "atelier-feedback-good" if met else "atelier-feedback-bad"
                lines.append(f'<p class="{css}">{text}</p>')
        table = svg.table(
            self._("bandwidth.caption"),
            [self._("bandwidth.measure"), self._("bandwidth.amount")],
            rows,
        )
        a4ai = tables.load("a4ai")
        cite = tables.citation(a4ai) if lines else ""
        return f'{table}<div role="status" aria-live="polite">{"".join(lines)}</div>{cite}'
