"""``python -m admitone``: the same as the ``admitone`` command."""

from admitone.cli import main

main()
