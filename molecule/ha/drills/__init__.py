"""Failure drills of the scaled-out scenario (run by its side_effect step: ``pytest <scenario>/drills``)."""
