"""What a user might write instead of ainisa-middleware, kept for comparison.

``naive_*``: the verification written the way a typical user would, on the
framework's own request objects. ``floor_*``: a hand-tuned minimal version that
does the same job for a JSON chat request with no options, our estimate of the
practical limit. Neither is part of the package, and neither is a safe
replacement for it: see ``docs/performance.md`` for what each one leaves out.
"""
