// namcore site: a picture shown smaller than its file (a wide plot in the text column)
// becomes a link to the file itself, so a reader can open it at full size. Figures
// written with the {figure} directive and a width already link to their file.
window.addEventListener("load", function () {
  document.querySelectorAll("article img").forEach(function (img) {
    if (img.closest("a") || img.naturalWidth <= img.clientWidth + 1) {
      return;
    }
    var link = document.createElement("a");
    link.href = img.currentSrc || img.src;
    link.title = "Open the picture at full size (" + img.naturalWidth + " × " +
      img.naturalHeight + " px)";
    link.className = "image-full-size";
    img.parentNode.insertBefore(link, img);
    link.appendChild(img);
  });
});
