"""Intake (相談受付): consultations, persons and the consent ledger."""
