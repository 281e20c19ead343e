"""Tsunagu's services: intake, referral, meeting and projection, and the platform they share."""
