"""The finance desk: fee structure, large-transaction reviews, disputes and chargebacks, reports."""
