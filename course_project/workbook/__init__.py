"""Helpers for the workbook: services, the live server, showing real source files, websocket clients."""
