"""Statements rendered as CSV and PDF (fpdf2, pure Python): amounts in minor units and formatted."""

from __future__ import annotations

import csv
import io

from questline.ledger.schemas import StatementOut


def major(amount: int, exponent: int) -> str:
    """Minor units as a decimal string in major units (12345, 2 -> "123.45"; -5, 2 -> "-0.05")."""
    sign = "-" if amount < 0 else ""
    digits = str(abs(amount)).rjust(exponent + 1, "0")
    return sign + (f"{digits[:-exponent]}.{digits[-exponent:]}" if exponent else digits)


def _owner(st: StatementOut) -> str:
    return f"{st.owner_kind} {st.owner_id}" + (f" ({st.sub})" if st.sub else "")


def statement_csv(st: StatementOut) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "transaction_id", "kind", "source", "description", "amount_minor", "amount",
                     "balance_minor", "balance", "currency"])
    writer.writerow([st.start.isoformat(), "", "opening_balance", "", "", "", "", st.opening_balance,
                     major(st.opening_balance, st.exponent), st.currency])
    for line in st.movements:
        writer.writerow([line.created_at.isoformat(), line.transaction_id, line.kind, line.source,
                         line.description or "", line.amount, major(line.amount, st.exponent), line.balance,
                         major(line.balance, st.exponent), st.currency])
    writer.writerow([st.end.isoformat(), "", "closing_balance", "", "", "", "", st.closing_balance,
                     major(st.closing_balance, st.exponent), st.currency])
    return out.getvalue()


def _latin(text: str) -> str:
    """The PDF's core font speaks Latin-1; anything else is shown as ``?``."""
    return text.encode("latin-1", "replace").decode("latin-1")


def statement_pdf(st: StatementOut) -> bytes:
    from fpdf import FPDF  # imported on first use: fpdf and fontTools add ~50 MB to every process

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_creation_date(st.end)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, _latin(f"Statement: {_owner(st)}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, _latin(f"{st.currency}, {st.start.isoformat()} to {st.end.isoformat()}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, f"Opening balance: {major(st.opening_balance, st.exponent)} {st.currency}",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    widths = (42, 58, 40, 25, 25)
    pdf.set_font("Helvetica", "B", 9)
    for width, title in zip(widths, ("Date (UTC)", "Transaction", "Kind", "Amount", "Balance"), strict=True):
        pdf.cell(width, 6, title, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 8)
    for line in st.movements:
        cells = (line.created_at.strftime("%Y-%m-%d %H:%M:%S"), line.transaction_id, line.kind,
                 major(line.amount, st.exponent), major(line.balance, st.exponent))
        for i, (width, text) in enumerate(zip(widths, cells, strict=True)):
            pdf.cell(width, 5, _latin(text), border=1, align="R" if i >= 3 else "L")
        pdf.ln()
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 6, f"In: {major(st.total_in, st.exponent)}   Out: {major(st.total_out, st.exponent)}   "
                   f"Closing balance: {major(st.closing_balance, st.exponent)} {st.currency}",
             new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
