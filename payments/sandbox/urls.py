from django.urls import path

from . import views

app_name = "sandbox"

urlpatterns = [
    path("gateway/api/backTransReq.do", views.back_trans, name="back"),
    path("gateway/api/queryTrans.do", views.query_trans, name="query"),
    path("gateway/api/batchTrans.do", views.batch_trans, name="batch"),
    path("filedownload/", views.file_download, name="file_download"),
]
