"""Placeholder until this area lands; replaced by its own module."""

import click

commands: list[click.Command] = []
