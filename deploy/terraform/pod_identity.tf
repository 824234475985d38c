# EKS Pod Identity: the agent add-on, the app's role (least privilege: read one
# bucket) and the association of my-app-namespace/my-app-sa with that role.

resource "aws_eks_addon" "pod_identity_agent" {
  cluster_name = data.aws_eks_cluster.this.name
  addon_name   = "eks-pod-identity-agent"
}

# Trust policy of the app's role. The agent calls AssumeRoleForPodIdentity,
# which assumes the role AND tags the session (eks-cluster-name,
# kubernetes-namespace, kubernetes-service-account, ...): both sts:AssumeRole
# and sts:TagSession must be allowed, or every credential request fails.
# aws:SourceAccount (and aws:SourceArn, the cluster) keep other accounts'
# clusters from using this role through the shared service principal.
data "aws_iam_policy_document" "pod_identity_trust" {
  statement {
    sid     = "EksPodIdentity"
    effect  = "Allow"
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [data.aws_eks_cluster.this.arn]
    }
  }
}

resource "aws_iam_role" "app" {
  name               = "${var.cluster_name}-s3-reader"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_trust.json
}

resource "aws_iam_policy" "s3_reader" {
  name        = "${var.cluster_name}-s3-reader"
  description = "Read-only access to one S3 bucket"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = ["arn:aws:s3:::${var.bucket_name}"]
      },
      {
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["arn:aws:s3:::${var.bucket_name}/*"]
      },
    ]
  })
}

resource "aws_iam_role_policy_attachment" "app" {
  role       = aws_iam_role.app.name
  policy_arn = aws_iam_policy.s3_reader.arn
}

resource "aws_eks_pod_identity_association" "app" {
  cluster_name    = data.aws_eks_cluster.this.name
  namespace       = var.app_namespace
  service_account = var.app_service_account
  role_arn        = aws_iam_role.app.arn

  depends_on = [aws_eks_addon.pod_identity_agent]
}
