"""Helpers for the workbook: services, the live server, source files shown, websocket clients."""
