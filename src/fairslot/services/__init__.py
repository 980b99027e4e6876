"""Use cases: each ties the domain rules, storage and providers together for one action."""
