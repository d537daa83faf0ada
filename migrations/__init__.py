"""Numbered SQL migrations, shipped as package data so an installed chledger finds them."""
