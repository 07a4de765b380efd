"""CLI subcommands that live in their own modules: each exposes ``register(app)``.

A command function only parses arguments, shows progress and writes files; the work it does is a
Python function in the library. Heavy imports go inside the command function, so that
``fairleak --help`` stays fast.
"""
