"""Invoices as HTML (Jinja2, every value escaped) and as PDF (fpdf2, pure Python)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from questline.billing.schemas import InvoiceOut
from questline.treasury.render import major

if TYPE_CHECKING:
    from jinja2 import Template

_SOURCE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
th, td { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.status { text-transform: uppercase; letter-spacing: .05em; font-weight: 600; }
</style></head>
<body>
<h1>Invoice {{ title }}</h1>
<p class="status">{{ inv.status }}</p>
<p><strong>Billed to</strong><br>{{ inv.bill_to.get("name", "") }}<br>{{ inv.bill_to.get("address", "") }}
{% if inv.bill_to.get("tax_id") %}<br>Tax id: {{ inv.bill_to["tax_id"] }}{% endif %}
{% if inv.bill_to.get("country") %}<br>{{ inv.bill_to["country"] }}{% endif %}</p>
<p>Period: {{ period }}{% if inv.finalized_at %}<br>Issued: {{ day(inv.finalized_at) }}{% endif %}
{% if inv.due_at %}<br>Due: {{ day(inv.due_at) }}{% endif %}</p>
<table>
<thead><tr><th>#</th><th>Description</th><th class="n">Amount ({{ inv.currency }})</th></tr></thead>
<tbody>
{% for line in inv.lines %}<tr><td>{{ line.position }}</td><td>{{ line.description }}{% if line.prepaid %}
(paid from campaign budget){% endif %}</td><td class="n">{{ money(line.amount) }}</td></tr>
{% endfor %}</tbody>
<tfoot>
<tr><td></td><th>Subtotal</th><td class="n">{{ money(inv.subtotal) }}</td></tr>
<tr><td></td><th>Tax ({{ inv.tax_country or "no country" }}, {{ rate }}%)</th>
<td class="n">{{ money(inv.tax) }}</td></tr>
<tr><td></td><th>Total</th><td class="n">{{ money(inv.total) }}</td></tr>
<tr><td></td><th>Paid from campaign budgets</th><td class="n">{{ money(inv.prepaid) }}</td></tr>
{% for note in inv.credit_notes %}<tr><td></td><th>Credit note {{ note.number }}: {{ note.reason }}</th>
<td class="n">{{ money(note.amount) }}</td></tr>
{% endfor %}<tr><td></td><th>Paid</th><td class="n">{{ money(inv.paid) }}</td></tr>
<tr><td></td><th>Amount due</th><td class="n"><strong>{{ money(inv.amount_due) }}</strong></td></tr>
</tfoot></table>
</body></html>
"""


@cache
def _template() -> Template:
    """Compiled on first use: Jinja2 is imported only by a process that renders an invoice (idle memory)."""
    from jinja2 import BaseLoader, Environment, select_autoescape

    env = Environment(loader=BaseLoader(), autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(_SOURCE)


def _title(inv: InvoiceOut) -> str:
    return inv.number or f"draft {inv.id}"


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _period(inv: InvoiceOut) -> str:
    if inv.kind == "monthly":
        return inv.period_key
    return f"campaign {inv.period_key.removeprefix('campaign:')}"


def _rate(inv: InvoiceOut) -> str:
    return major(inv.tax_rate_bps, 2)


def invoice_html(inv: InvoiceOut) -> str:
    return _template().render(inv=inv, title=_title(inv), period=_period(inv), rate=_rate(inv), day=_day,
                             money=lambda amount: major(amount, inv.exponent))


def _latin(text: str) -> str:
    """The PDF's core font speaks Latin-1; anything else is shown as ``?``."""
    return text.encode("latin-1", "replace").decode("latin-1")


def invoice_pdf(inv: InvoiceOut) -> bytes:
    from fpdf import FPDF  # imported on first use, as the treasury's statements do (fpdf adds ~50 MB)

    def money(amount: int) -> str:
        return major(amount, inv.exponent)

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_creation_date(inv.finalized_at or inv.created_at)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _latin(f"Invoice {_title(inv)}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, _latin(f"Status: {inv.status}   Period: {_period(inv)}"), new_x="LMARGIN", new_y="NEXT")
    if inv.finalized_at and inv.due_at:
        pdf.cell(0, 6, f"Issued {_day(inv.finalized_at)}, due {_day(inv.due_at)}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 6, "Billed to", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for key in ("name", "address", "tax_id", "country"):
        value = inv.bill_to.get(key, "")
        if value:
            pdf.multi_cell(0, 5, _latin(("Tax id: " if key == "tax_id" else "") + value),
                           new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    widths = (10, 140, 40)
    pdf.set_font("Helvetica", "B", 9)
    for width, title in zip(widths, ("#", "Description", f"Amount ({inv.currency})"), strict=True):
        pdf.cell(width, 6, title, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for line in inv.lines:
        text = line.description + (" (paid from campaign budget)" if line.prepaid else "")
        pdf.cell(widths[0], 6, str(line.position), border=1)
        pdf.cell(widths[1], 6, _latin(text[:90]), border=1)
        pdf.cell(widths[2], 6, money(line.amount), border=1, align="R")
        pdf.ln()
    pdf.ln(2)
    rows = [("Subtotal", inv.subtotal), (f"Tax ({inv.tax_country or 'no country'}, {_rate(inv)}%)", inv.tax),
            ("Total", inv.total), ("Paid from campaign budgets", -inv.prepaid)]
    rows += [(f"Credit note {n.number}", -n.amount) for n in inv.credit_notes]
    rows += [("Paid", -inv.paid), ("Amount due", inv.amount_due)]
    for label, amount in rows:
        pdf.set_font("Helvetica", "B" if label in ("Total", "Amount due") else "", 10)
        pdf.cell(widths[0] + widths[1], 6, _latin(label), align="R")
        pdf.cell(widths[2], 6, money(amount), align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
