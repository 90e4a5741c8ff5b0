"""Harmful: outputs that would run script in whoever opens the page (HTML with a script tag and an event handler,
JavaScript, SVG and markdown with script). Every page a person opens shows them inert."""
# %% explore_data
from IPython.display import HTML, Javascript, display

display(HTML('<b>bold</b><script>document.title = "pwned-html"</script>'
             '<img src="data:," onerror="document.title = \'pwned-img\'">'))
display(Javascript('document.title = "pwned-js"'))
display({"image/svg+xml": '<svg xmlns="http://www.w3.org/2000/svg"><script>document.title = "pwned-svg"</script></svg>',
         "text/plain": "an svg"}, raw=True)
display({"text/markdown": '<script>document.title = "pwned-md"</script> **markdown**', "text/plain": "markdown"}, raw=True)
# %% answer_gates
Gates decide how much passes. <img src="data:," onerror="document.title = 'pwned-answer'"><script>document.title = "pwned-answer-script"</script>
