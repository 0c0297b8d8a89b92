"""The `chatbot` command line: the only package that imports both the library (`training`) and the service (`app`).

Each module holds one family of commands; they parse options, call the library and print. `chatbot.cli` builds the
command group and turns every error a user can cause (`training.errors.UserError`) into one line and exit status 1.
"""
