# Worker nodes: IAM role, launch template with locked-down IMDS, managed node group.

resource "aws_iam_role" "node" {
  name = "${var.cluster_name}-node"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
  ])
  role       = aws_iam_role.node.name
  policy_arn = each.value
}

# No image_id: the managed node group picks the EKS-optimized AMI (ami_type below)
# and merges its own bootstrap user data; the template only pins IMDS settings.
resource "aws_launch_template" "nodes" {
  name_prefix   = "${var.cluster_name}-nodes-"
  description   = "EKS worker nodes: IMDSv2 only, hop limit 1"
  instance_type = "t3.medium"

  metadata_options {
    http_endpoint = "enabled"
    # IMDSv2 only: a plain GET (IMDSv1) would hand the node role to any pod,
    # whatever the hop limit.
    http_tokens = "required"
    # Hop limit 1, set explicitly. The IMDSv2 token answer then cannot cross the
    # extra hop into a pod's network namespace, so ordinary pods cannot take the
    # node's IAM role. EKS Pod Identity does NOT need 2: the Pod Identity agent
    # is a hostNetwork DaemonSet that reaches IMDS from the node itself (and pods
    # talk to the agent at 169.254.170.23, not to IMDS). A hop limit of 2 is
    # exactly what lets every ordinary pod obtain the node role.
    http_put_response_hop_limit = 1
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name = "${var.cluster_name}-node"
    }
  }
}

resource "aws_eks_node_group" "main" {
  cluster_name    = data.aws_eks_cluster.this.name
  node_group_name = "main"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.private_subnet_ids
  ami_type        = "AL2023_x86_64_STANDARD"

  scaling_config {
    desired_size = 2
    min_size     = 1
    max_size     = 3
  }

  launch_template {
    id      = aws_launch_template.nodes.id
    version = aws_launch_template.nodes.latest_version
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}
