"""The review web app: plain ES modules and CSS served by the API process, no build step, no CDN."""
