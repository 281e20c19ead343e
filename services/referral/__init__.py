"""Referral (つなぐ): closed-loop referrals between any two agencies of Team Zama."""
