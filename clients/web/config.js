// Deployment settings for the static page. Overwrite this file when the page is hosted apart from the API.
// apiBase: the API's base URL ("" = same origin, as served by `python -m cxr_local`).
// A `?api=https://...` query parameter or the Settings panel overrides it for one browser.
window.CXR_CONFIG = { apiBase: "" };
