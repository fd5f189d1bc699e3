"""The buyer web app: pages, their static files, and ticket QR codes."""
