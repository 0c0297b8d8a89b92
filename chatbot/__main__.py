"""`python -m chatbot`: the same command, named the same way, as the `chatbot` script."""

from chatbot.cli import main

main(prog_name="chatbot")
