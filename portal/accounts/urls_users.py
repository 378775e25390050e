"""/accounts/users/…: user management (names in the ``accounts`` namespace)."""

from django.urls import path

from . import views_users as views

urlpatterns = [
    path("", views.UserListView.as_view(), name="user_list"),
    path("add/", views.UserCreateView.as_view(), name="user_create"),
    path("<int:pk>/", views.UserDetailView.as_view(), name="user_detail"),
    path("<int:pk>/edit/", views.UserEditView.as_view(), name="user_edit"),
    path("<int:pk>/disable/", views.UserDisableView.as_view(), name="user_disable"),
    path("<int:pk>/enable/", views.UserEnableView.as_view(), name="user_enable"),
    path("<int:pk>/unlock/", views.UserUnlockView.as_view(), name="user_unlock"),
    path("<int:pk>/reset-password/", views.UserResetPasswordView.as_view(), name="user_reset_password"),
]
