"""cxr_gateway: a DICOM edge node that receives studies from a PACS, scores frontal chest radiographs through the
service's public API and sends the findings back as DICOM SR."""
