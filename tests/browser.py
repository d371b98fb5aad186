"""Open a report page in headless Debian Chromium (playwright) with the network blocked.

`inspect_page` loads the page, records console errors, page errors and every request that tried
to leave file://, then reports each bokeh plot: its title, how many data points its renderers
hold and how many "ink" pixels (dark or saturated, i.e. not background or grid) its canvas has
inside the data frame. It can move a slider and take a screenshot.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Per plot: title, data points in its renderers, ink pixels in its frame.
PLOTS_JS = """() => {
  const out = [];
  for (const v of Bokeh.index.all_views()) {
    if (v.model.type !== 'Figure' && v.model.type !== 'Plot') continue;
    const canvas = v.canvas_view.primary.canvas;
    const ctx = canvas.getContext('2d');
    const box = v.frame.bbox;
    const r = canvas.width / Math.max(1, canvas.getBoundingClientRect().width);
    const x = Math.round(box.left * r) + 2, y = Math.round(box.top * r) + 2;
    const w = Math.max(0, Math.round(box.width * r) - 4);
    const h = Math.max(0, Math.round(box.height * r) - 4);
    let ink = 0;
    if (w > 0 && h > 0) {
      const px = ctx.getImageData(x, y, w, h).data;
      for (let i = 0; i < px.length; i += 4) {
        const [R, G, B, A] = [px[i], px[i + 1], px[i + 2], px[i + 3]];
        if (A < 128) continue;
        const lum = 0.299 * R + 0.587 * G + 0.114 * B;
        if (lum < 200 || Math.max(R, G, B) - Math.min(R, G, B) > 40) ink++;
      }
    }
    let points = 0;
    for (const rd of v.model.renderers) {
      if (rd.data_source) points += rd.data_source.get_length() || 0;
    }
    out.push({title: v.model.title ? v.model.title.text : '', points, ink,
              width: canvas.width, height: canvas.height});
  }
  return out;
}"""


@dataclass
class PageCheck:
    """What the browser saw."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    plots: list[dict] = field(default_factory=list)
    plots_after_slider: list[dict] = field(default_factory=list)
    slider_moved: bool = False
    selects: list[list[str]] = field(default_factory=list)  # options of each <select>
    plots_after_select: list[dict] = field(default_factory=list)


def chromium_available() -> bool:
    """True if the Debian chromium binary and the playwright package are both present."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


def _move_slider(page) -> bool:
    """Drag the first bokeh slider handle to the far left (epoch 0); True if one was found."""
    handle = page.locator(".noUi-handle").first
    if handle.count() == 0:
        return False
    handle.scroll_into_view_if_needed()
    track = page.locator(".noUi-base").first
    box, hbox = track.bounding_box(), handle.bounding_box()
    page.mouse.move(hbox["x"] + hbox["width"] / 2, hbox["y"] + hbox["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] - 20, hbox["y"] + hbox["height"] / 2, steps=8)
    page.mouse.up()
    return True


def inspect_page(
    path: str | Path,
    *,
    move_slider: bool = True,
    select: str | None = None,
    screenshot: str | Path | None = None,
    timeout_ms: int = 30_000,
) -> PageCheck:
    """Load `path` offline in headless chromium and report errors, plots and blocked requests.

    `select`: an option label to pick in the first <select> (a seed selector), after the slider
    moved; the plots are read again then (`plots_after_select`)."""
    from playwright.sync_api import sync_playwright

    check = PageCheck()
    url = Path(path).resolve().as_uri()
    with sync_playwright() as p:
        exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.on(
                "console",
                lambda m: check.console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: check.page_errors.append(str(e)))

            def route(r):
                if r.request.url.startswith("file://"):
                    r.continue_()
                else:
                    check.blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(url, wait_until="load", timeout=timeout_ms)
            page.wait_for_function(
                "window.Bokeh !== undefined && Bokeh.documents.length > 0", timeout=timeout_ms
            )
            page.wait_for_function(
                "Array.from(Bokeh.index.all_views()).filter(v => v.model.type === 'Figure')"
                ".every(v => v.is_idle === undefined || v.is_idle)",
                timeout=timeout_ms,
            )
            page.wait_for_timeout(500)
            check.plots = page.evaluate(PLOTS_JS)
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            selects = page.locator("select")  # playwright's CSS pierces bokeh's shadow DOM
            check.selects = [
                [t.strip() for t in selects.nth(i).locator("option").all_inner_texts()]
                for i in range(selects.count())
            ]
            if move_slider:
                check.slider_moved = _move_slider(page)
                page.wait_for_timeout(500)
                check.plots_after_slider = page.evaluate(PLOTS_JS)
            if select is not None:
                page.locator("select").first.select_option(label=select)
                page.wait_for_timeout(500)
                check.plots_after_select = page.evaluate(PLOTS_JS)
        finally:
            browser.close()
    return check
